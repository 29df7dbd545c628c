"""Stage prepare on a fabricated CN-Celeb1 tree: dev and eval sets, the enroll maps and Kaldi
trials of both protocols (Concat, Avg), features, scoring the Avg protocol, and bad input named
by file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from real_layouts import DEV_SPEAKERS, ENROLL_UTTS, EVAL_SPEAKERS, make_cnceleb1

from spectral.corpora import cnceleb1
from spectral.data.kaldi import read_table, read_trials
from spectral.errors import InputError


@pytest.fixture(scope="module")
def cnceleb(tmp_path_factory) -> Path:
    return make_cnceleb1(tmp_path_factory.mktemp("cnc"))


@pytest.mark.parametrize("folder,suffix", [("CN-Celeb_flac", ".flac"), ("CN-Celeb", ".wav")],
                         ids=["CN-Celeb_flac", "CN-Celeb-lists-say-wav"])
def test_prepare_writes_dev_eval_enroll_map_and_kaldi_trials(tmp_path, folder, suffix):
    make_cnceleb1(tmp_path / "corpus", folder=folder, list_suffix=suffix)
    data = tmp_path / "data"
    # the parent of CN-Celeb_flac/ is accepted as well as the root itself
    assert cnceleb1.main(["--corpus-dir", str(tmp_path / "corpus"), "--data-dir", str(data), "--no-progress"]) == 0
    dev = read_table(data / "cnceleb1_dev" / "utt2spk")
    assert sorted(set(dev.values())) == DEV_SPEAKERS and len(dev) == 12
    assert "id00001-singing-01-002" in dev
    for name in ("cnceleb1_dev", "cnceleb1_eval"):
        for f in ("wav.scp", "utt2spk", "spk2utt"):
            keys = [line.split()[0] for line in (data / name / f).read_text().splitlines()]
            assert keys == sorted(keys, key=str.encode), (name, f)
        for utt, path in read_table(data / name / "wav.scp").items():
            assert Path(path).is_file() and path.endswith(".flac")
            assert read_table(data / name / "utt2spk")[utt] == utt.split("-")[0]
    ev = read_table(data / "cnceleb1_eval" / "utt2spk")
    # per speaker: the concatenated enroll file, 2 test files, 3 enrollment utterances of the Avg protocol
    assert set(ev.values()) == set(EVAL_SPEAKERS) and len(ev) == 3 * (1 + 2 + 3)
    concat = read_table(data / "cnceleb1_eval" / "enroll_maps" / "cnceleb1_concat")
    assert concat == {f"{s}-enroll": f"{s}-enroll" for s in EVAL_SPEAKERS}
    avg = read_table(data / "cnceleb1_eval" / "enroll_maps" / "cnceleb1_avg")
    assert avg == {f"{s}-enroll": " ".join(f"{s}-{u}" for u in ENROLL_UTTS) for s in EVAL_SPEAKERS}
    assert {u for us in avg.values() for u in us.split()} <= ev.keys()
    wav = read_table(data / "cnceleb1_eval" / "wav.scp")
    assert wav["id00800-drama-03-001"].endswith("/data/id00800/drama-03-001.flac")
    for protocol in ("cnceleb1_concat", "cnceleb1_avg"):
        trials = read_trials(data / "cnceleb1_eval" / "trials" / protocol)
        assert len(trials) == 18 and sum(t[2] == "target" for t in trials) == 6
        assert trials[0] == ("id00800-enroll", "id00800-speech-01-001", "target")
        assert trials[2] == ("id00800-enroll", "id00801-speech-01-001", "nontarget")
        assert all(e in concat and t in ev for e, t, _ in trials)


def test_lhotse_manifests_match_the_kaldi_files(cnceleb, tmp_path):
    from lhotse import CutSet

    cnceleb1.prepare(cnceleb, tmp_path, progress=False)
    cuts = CutSet.from_file(tmp_path / "cnceleb1_eval" / "cuts.jsonl.gz")
    assert {c.recording_id: c.supervisions[0].speaker for c in cuts} == read_table(tmp_path / "cnceleb1_eval" / "utt2spk")
    assert all(abs(c.duration - 1.0) < 1e-6 for c in cuts)


def test_a_model_with_several_enroll_files_maps_to_all_of_them(cnceleb, tmp_path):
    root = tmp_path / "CN-Celeb_flac"
    shutil.copytree(cnceleb, root)
    shutil.copy(root / "eval" / "enroll" / "id00800-enroll.flac", root / "eval" / "enroll" / "id00800-enroll2.flac")
    with open(root / "eval" / "lists" / "enroll.lst", "a") as f:
        f.write("id00800-enroll enroll/id00800-enroll2.flac\n")
    cnceleb1.prepare(root, tmp_path / "data", dev_name=None, progress=False)
    enroll = read_table(tmp_path / "data" / "cnceleb1_eval" / "enroll_maps" / "cnceleb1_concat")
    assert enroll["id00800-enroll"] == "id00800-enroll id00800-enroll2"
    assert not (tmp_path / "data" / "cnceleb1_dev").exists()


def test_prepare_then_features_then_trials_cover_every_utterance(cnceleb, tmp_path):
    from spectral.features import compute_fbank

    cnceleb1.prepare(cnceleb, tmp_path, progress=False)
    d = tmp_path / "cnceleb1_eval"
    compute_fbank(d, nj=1, progress=False)
    feats = read_table(d / "feats.scp")
    assert feats.keys() == read_table(d / "wav.scp").keys()
    frames = {u: int(n) for u, n in read_table(d / "utt2num_frames").items()}
    assert all(n == 100 for n in frames.values())  # 1 s at 10 ms, snip_edges=false
    for protocol in ("cnceleb1_concat", "cnceleb1_avg"):
        models = read_table(d / "enroll_maps" / protocol)
        needed = {u for _, t, _ in read_trials(d / "trials" / protocol) for u in [t]} | {
            u for us in models.values() for u in us.split()}
        assert needed <= feats.keys()


def test_one_protocol_prepares_only_its_own_enrollment(cnceleb, tmp_path):
    root = tmp_path / "CN-Celeb_flac"
    shutil.copytree(cnceleb, root)
    (root / "eval" / "lists" / "enroll.map").unlink()  # Concat never reads it
    cnceleb1.prepare(root, tmp_path / "concat", dev_name=None, trials=("cnceleb1_concat",), progress=False)
    d = tmp_path / "concat" / "cnceleb1_eval"
    assert [p.name for p in (d / "trials").iterdir()] == ["cnceleb1_concat"]
    assert [p.name for p in (d / "enroll_maps").iterdir()] == ["cnceleb1_concat"]
    assert len(read_table(d / "utt2spk")) == 3 * (1 + 2)
    cnceleb1.prepare(cnceleb, tmp_path / "avg", dev_name=None, trials=("cnceleb1_avg",), progress=False)
    d = tmp_path / "avg" / "cnceleb1_eval"
    assert [p.name for p in (d / "trials").iterdir()] == ["cnceleb1_avg"]
    assert not any(u.endswith("-enroll") for u in read_table(d / "utt2spk"))  # no concatenated files
    assert len(read_table(d / "utt2spk")) == 3 * (2 + 3)


def test_the_avg_protocol_scores_each_model_as_the_hand_made_average_of_its_enroll_map_utterances(cnceleb, tmp_path):
    import numpy as np

    from spectral.scoring.embeddings import write_embeddings
    from spectral.scoring.score import main as score_main

    cnceleb1.prepare(cnceleb, tmp_path, dev_name=None, progress=False)
    d = tmp_path / "cnceleb1_eval"
    rng = np.random.default_rng(7)
    vectors = {u: rng.normal(size=8).astype(np.float32) for u in read_table(d / "utt2spk")}
    write_embeddings(vectors, tmp_path / "xvector.ark", tmp_path / "xvector.scp")
    scores = {}
    for protocol in ("cnceleb1_concat", "cnceleb1_avg"):
        out = tmp_path / f"{protocol}.score"
        assert score_main(["--enroll-map", str(d / "enroll_maps" / protocol), str(tmp_path / "xvector.scp"),
                           str(d / "trials" / protocol), str(out)]) == 0
        scores[protocol] = {(e, t): float(s) for e, t, s in (line.split() for line in out.read_text().splitlines())}

    def cosine(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    for e, t, _ in read_trials(d / "trials" / "cnceleb1_avg"):
        spk = e.split("-")[0]
        by_hand = np.mean([vectors[f"{spk}-{u}"] for u in ENROLL_UTTS], axis=0)  # the raw embeddings' mean
        assert scores["cnceleb1_avg"][(e, t)] == pytest.approx(cosine(by_hand, vectors[t]), abs=1e-6)
        assert scores["cnceleb1_concat"][(e, t)] == pytest.approx(cosine(vectors[e], vectors[t]), abs=1e-6)
    assert scores["cnceleb1_avg"] != scores["cnceleb1_concat"]


def _edit(root: Path, rel: str, text: str | None) -> None:
    path = root / rel
    if text is None:
        path.unlink()
    else:
        path.write_text(text)


BAD = {
    "trials-line-with-two-fields": ("eval/lists/trials.lst", "id00800-enroll test/id00800-speech-01-001.flac 1\n"
                                    "id00800-enroll test/id00800-singing-01-002.flac\n",
                                    r"trials\.lst:2: expected '<model> test/<file> 1\|0'"),
    "trials-label-not-0-1": ("eval/lists/trials.lst", "id00800-enroll test/id00800-speech-01-001.flac target\n",
                             r"trials\.lst:1: expected"),
    "trial-with-unknown-model": ("eval/lists/trials.lst", "id00900-enroll test/id00800-speech-01-001.flac 0\n",
                                 r"trials\.lst:1: enroll model 'id00900-enroll' is not in"),
    "trial-file-not-in-test-list": ("eval/lists/test.lst", "test/id00800-speech-01-001.flac\n",
                                    r"trials\.lst:2: test file 'test/id00800-singing-01-002.flac' is not in .*test\.lst"),
    "enroll-file-missing": ("eval/lists/enroll.lst", "id00800-enroll enroll/id00800-enroll.flac\n"
                            "id00801-enroll enroll/nobody-enroll.flac\n",
                            r"enroll\.lst:2: names 'enroll/nobody-enroll.flac', which is not in"),
    "enroll-line-with-one-field": ("eval/lists/enroll.lst", "id00800-enroll\n", r"enroll\.lst:1: expected"),
    "test-list-empty": ("eval/lists/test.lst", "\n", r"test\.lst: empty list file"),
    "dev-list-bad-id": ("dev/dev.lst", "id00000\nspeaker one\n", r"dev\.lst:2: expected one speaker id"),
    "dev-speaker-without-audio": ("dev/dev.lst", "id00000\nid00700\n", r"dev\.lst: speaker 'id00700' has no directory"),
    "dev-lists-an-eval-speaker": ("dev/dev.lst", "id00000\nid00800\n", r"dev\.lst: lists 1 eval speakers"),
    "trials-list-missing": ("eval/lists/trials.lst", None, r"trials\.lst: missing list file"),
    "enroll-map-missing": ("eval/lists/enroll.map", None, r"enroll\.map: missing: the cnceleb1_avg protocol averages"),
    "enroll-map-names-another-speaker": ("eval/lists/enroll.map", "id00800-enroll id00800/drama-03-001.flac\n"
                                         "id00801-enroll id00801/drama-03-001.flac id00800/drama-03-002.flac\n",
                                         r"enroll\.map:2: 'id00800/drama-03-002.flac' is not an utterance of model "
                                         r"'id00801-enroll'"),
    "enroll-map-file-missing": ("eval/lists/enroll.map", "id00800-enroll id00800/drama-09-009.flac\n",
                                r"enroll\.map:1: names 'id00800/drama-09-009.flac', which is not in .*data"),
    "enroll-map-model-alone": ("eval/lists/enroll.map", "id00800-enroll\n", r"enroll\.map:1: expected '<model> <spk>/<file>"),
    "enroll-map-lacks-a-trial-model": ("eval/lists/enroll.map", "id00800-enroll id00800/drama-03-001.flac\n",
                                       r"trials\.lst:7: enroll model 'id00801-enroll' is not in .*enroll\.map \(cnceleb1_avg\)"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_names_the_file_and_line_and_writes_nothing(cnceleb, tmp_path, case):
    rel, text, message = BAD[case]
    root = tmp_path / "CN-Celeb_flac"
    shutil.copytree(cnceleb, root)
    _edit(root, rel, text)
    with pytest.raises(InputError, match=message):
        cnceleb1.prepare(root, tmp_path / "data", progress=False)
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_corrupt_audio_is_named(cnceleb, tmp_path):
    root = tmp_path / "CN-Celeb_flac"
    shutil.copytree(cnceleb, root)
    (root / "eval" / "test" / "id00801-speech-01-001.flac").write_bytes(b"not flac at all")
    with pytest.raises(InputError, match=r"id00801-speech-01-001\.flac: not a readable audio file"):
        cnceleb1.prepare(root, tmp_path / "data", progress=False)


def test_a_directory_that_is_not_cn_celeb_is_refused_by_the_command(tmp_path, capsys):
    assert cnceleb1.main(["--corpus-dir", str(tmp_path), "--data-dir", str(tmp_path / "d"), "--no-progress"]) == 1
    assert "not a CN-Celeb1 directory" in capsys.readouterr().err
