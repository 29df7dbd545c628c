"""Every command ends bad input the same way: one line '<command>: error: <file>[:<line>]: ...'
and exit status 1, no traceback (issue 14: one error type, one run_main; issue 12 item 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spectral import augment, drift, embed, features, svd
from spectral.corpora import cnceleb1, combine, dev_trials, voxceleb1, voxceleb2
from spectral.corpora.embedded import cli as make_corpus
from spectral.export import cli as export_cli
from spectral.scoring import compare, embeddings, metrics, report, score, select
from spectral.train import finetune, pretrain

LATIN1 = b"caf\xe9"  # not UTF-8


def make_cnceleb1(parent: Path) -> Path:
    """tests/corpora/real_layouts.py's fabricated CN-Celeb1 tree (loaded by path, as test_real_configs does)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("real_layouts_by_path", Path(__file__).parent / "corpora" / "real_layouts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_cnceleb1(parent)


def _append_bad_line(path: Path) -> int:
    """Append a line that is not UTF-8; return its number."""
    data = path.read_bytes()
    path.write_bytes(data + b"x " + LATIN1 + b"\n")
    return data.count(b"\n") + 1


def _prepared(vox1_layout: Path, tmp_path: Path) -> Path:
    assert voxceleb1.main(["--corpus-dir", str(vox1_layout), "--data-dir", str(tmp_path / "data"), "--no-progress"]) == 0
    return tmp_path / "data"


def _scored(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "trials").write_text("a b target\na c nontarget\n")
    (tmp_path / "scores").write_text("a b 1.0\na c 0.0\n")
    return tmp_path / "trials", tmp_path / "scores"


def case_prepare_vox1(vox1_layout, tmp_path):
    meta = vox1_layout / "vox1_meta.csv"
    n = _append_bad_line(meta)
    return voxceleb1.main, ["--corpus-dir", str(vox1_layout), "--data-dir", str(tmp_path / "d"), "--no-progress"], f"{meta}:{n}"


def case_prepare_cnceleb1(vox1_layout, tmp_path):
    root = make_cnceleb1(tmp_path)
    dev = root / "dev" / "dev.lst"
    n = _append_bad_line(dev)
    return cnceleb1.main, ["--corpus-dir", str(root), "--data-dir", str(tmp_path / "d"), "--no-progress"], f"{dev}:{n}"


def case_prepare_vox2(vox1_layout, tmp_path):
    corpus = tmp_path / "vox2" / "dev" / "aac" / "id00001" / "abc"
    corpus.mkdir(parents=True)
    (corpus / "00001.wav").write_bytes(b"RIFF" + b"\0" * 40)
    return (voxceleb2.main, ["--corpus-dir", str(tmp_path / "vox2"), "--data-dir", str(tmp_path / "d"), "--no-progress"],
            str(corpus / "00001.wav"))


def case_combine_data(vox1_layout, tmp_path):
    data = _prepared(vox1_layout, tmp_path)
    utt2spk = data / "vox1_dev" / "utt2spk"
    n = _append_bad_line(utt2spk)
    return combine.main, [str(tmp_path / "out"), str(data / "vox1_dev"), str(data / "vox1_test")], f"{utt2spk}:{n}"


def case_features(vox1_layout, tmp_path):
    data = _prepared(vox1_layout, tmp_path)
    wav_scp = data / "vox1_test" / "wav.scp"
    n = _append_bad_line(wav_scp)
    return features.main, ["--data-dir", str(data / "vox1_test"), "--no-progress"], f"{wav_scp}:{n}"


def case_svd(vox1_layout, tmp_path):
    (tmp_path / "final.pt").write_bytes(b"not a checkpoint")
    return svd.main, [str(tmp_path / "final.pt"), str(tmp_path / "svd")], str(tmp_path / "final.pt")


def case_score(vox1_layout, tmp_path):
    trials, _ = _scored(tmp_path)
    n = _append_bad_line(trials)
    (tmp_path / "x.scp").write_text("a x.ark:1\n")
    return score.main, [str(tmp_path / "x.scp"), str(trials), str(tmp_path / "out.score")], f"{trials}:{n}"


def case_compute_eer(vox1_layout, tmp_path):
    (tmp_path / "labelled").write_text("1.0 target\n0.0 nontarget\n0.5 maybe\n")
    return metrics.compute_eer_main, [str(tmp_path / "labelled")], f"{tmp_path / 'labelled'}:3"


def case_compute_min_dcf(vox1_layout, tmp_path):
    trials, scores = _scored(tmp_path)
    n = _append_bad_line(scores)
    return metrics.compute_min_dcf_main, [str(scores), str(trials)], f"{scores}:{n}"


def case_report(vox1_layout, tmp_path):
    trials, scores = _scored(tmp_path)
    n = _append_bad_line(trials)
    return (report.main, ["--system", "s", "--list", "o", str(trials), str(scores), "--out-dir", str(tmp_path / "r")],
            f"{trials}:{n}")


def case_speaker_means(vox1_layout, tmp_path):
    (tmp_path / "x.scp").write_text("a x.ark:1\n")
    (tmp_path / "spk2utt").write_bytes(b"s a\n")
    n = _append_bad_line(tmp_path / "spk2utt")
    return (embeddings.main, ["--spk2utt", str(tmp_path / "spk2utt"), str(tmp_path / "x.scp"), str(tmp_path / "o")],
            f"{tmp_path / 'spk2utt'}:{n}")


def case_compare(vox1_layout, tmp_path):
    d = tmp_path / "exp" / "sys"
    (d / "scores").mkdir(parents=True)
    metrics_file = d / "scores" / "vox1_O.metrics.json"
    metrics_file.write_text(json.dumps({"system": "sys", "eer_percent": 1.0, "min_dcf": [{"min_dcf": 0.5}]}))
    (d / "train_log.tsv").write_bytes(b"epoch\tseconds\ttrainable_params\n1\t" + LATIN1 + b"\t10\n")
    return (compare.main, ["--run", "frozen", "1", str(d), "--trials", "vox1_O", "--out-dir", str(tmp_path / "c")],
            str(d / "train_log.tsv") + ":2")


def case_pretrain(vox1_layout, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(b"pretrain:\n  epochs: 1\n# " + LATIN1 + b"\n")
    return pretrain.main, ["--config", str(cfg), "--data-dir", str(tmp_path), "--exp-dir", str(tmp_path / "e")], f"{cfg}:3"


def case_finetune(vox1_layout, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("adapter:\n  rank: [4\n")
    return (finetune.main, ["--config", str(cfg), "--data-dir", str(tmp_path), "--exp-dir", str(tmp_path / "e"),
                            "--backbone-checkpoint", "x.pt"], f"{cfg}:3")


def case_embed(vox1_layout, tmp_path):
    (tmp_path / "final.pt").write_bytes(b"\x80\x02garbage")
    return embed.main, [str(tmp_path / "final.pt"), str(tmp_path), str(tmp_path / "emb"), "--no-progress"], str(tmp_path / "final.pt")


def case_augment(vox1_layout, tmp_path):
    (tmp_path / "noise").mkdir()
    return (augment.main, ["--kind", "noise", "--source-dir", str(tmp_path / "noise"),
                           "--manifest", str(tmp_path / "out" / "noise_recordings.jsonl.gz")],
            str(tmp_path / "noise"))




def case_make_dev_trials(vox1_layout, tmp_path):
    data = _prepared(vox1_layout, tmp_path)
    utt2spk = data / "vox1_dev" / "utt2spk"
    n = _append_bad_line(utt2spk)
    return (dev_trials.main, [str(data / "vox1_dev"), str(tmp_path / "t"), str(tmp_path / "s"), "--speakers", "2"],
            f"{utt2spk}:{n}")


def case_select_lr(vox1_layout, tmp_path):
    d = tmp_path / "exp" / "sys"
    (d / "scores").mkdir(parents=True)
    trials = tmp_path / "dev_val"
    trials.write_text("e1 t1 target\ne2 t2 nontarget\n")
    bad = d / "scores" / "dev_val.score"
    bad.write_text("e1 t1 0.5\ne2 t2 not-a-number\n")
    return (select.main, ["--run", "lora", "0.1", str(d), "--dev-trials-file", str(trials), "--out", str(tmp_path / "sel.tsv")],
            f"{bad}:2")


def case_export(vox1_layout, tmp_path):
    (tmp_path / "final.pt").write_bytes(b"PK\x03\x04 not a zip")
    return (export_cli.main, [str(tmp_path / "final.pt"), str(tmp_path / "export"), "--what", "backend,peft"],
            str(tmp_path / "final.pt"))


def case_drift(vox1_layout, tmp_path):
    (tmp_path / "final.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "pre.pt").write_bytes(b"not a checkpoint either")
    return drift.main, [str(tmp_path / "final.pt"), str(tmp_path / "pre.pt"), str(tmp_path / "d")], str(tmp_path / "final.pt")


CASES = {name[len("case_"):]: f for name, f in dict(globals()).items() if name.startswith("case_")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_ends_in_one_error_line_naming_file_and_line(name, vox1_layout, tmp_path, capsys):
    main, argv, where = CASES[name](vox1_layout, tmp_path)
    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 1, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1 and lines[0].split(": error: ", 1)[1].startswith(f"{where}: "), err


def test_a_full_disk_in_the_corpus_generator_is_one_error_line(tmp_path, monkeypatch, capsys):
    import errno
    import os

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "vox1" / "wav"))

    monkeypatch.setattr(make_corpus, "generate_corpora", full)
    status = make_corpus.main(["--size", "tiny", "--target-dir", str(tmp_path / "vox1"),
                               "--pretrain-dir", str(tmp_path / "pre"), "--no-progress"])
    assert status == 1
    assert f"spectral-make-corpus: error: {tmp_path / 'vox1' / 'wav'}: No space left on device" in capsys.readouterr().err
