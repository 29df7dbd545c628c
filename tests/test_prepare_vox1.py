"""Stage prepare on a fabricated VoxCeleb1 tree: Kaldi files, lhotse manifests, trials, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spectral.corpora import voxceleb1
from spectral.data.kaldi import read_table, read_trials


def run(corpus: Path, data: Path, *extra: str) -> int:
    return voxceleb1.main(["--corpus-dir", str(corpus), "--data-dir", str(data), "--no-progress", *extra])


def test_writes_kaldi_dirs_sorted_as_kaldi_sorts(vox1_layout, tmp_path):
    data = tmp_path / "data"
    assert run(vox1_layout, data) == 0
    for name, n_spk in (("vox1_dev", 3), ("vox1_test", 3)):
        d = data / name
        for f in ("wav.scp", "utt2spk", "spk2utt", "spk2gender"):
            lines = (d / f).read_text().splitlines()
            keys = [line.split()[0] for line in lines]
            assert keys == sorted(keys, key=str.encode), f
        utt2spk = read_table(d / "utt2spk")
        assert len(set(utt2spk.values())) == n_spk
        assert len(utt2spk) == n_spk * 4
        spk2utt = read_table(d / "spk2utt")
        assert sorted(u for us in spk2utt.values() for u in us.split()) == sorted(utt2spk)
        for utt, wav in read_table(d / "wav.scp").items():
            spk, _, rest = utt.partition("-")
            session, _, stem = rest.rpartition("-")
            assert wav.endswith(f"/wav/{spk}/{session}/{stem}.wav") and Path(wav).is_file()
    dev_spk = set(read_table(data / "vox1_dev" / "utt2spk").values())
    test_spk = set(read_table(data / "vox1_test" / "utt2spk").values())
    assert not dev_spk & test_spk


def test_utterance_ids_follow_kaldi_and_lhotse(vox1_layout, tmp_path):
    assert run(vox1_layout, tmp_path / "data") == 0
    utts = read_table(tmp_path / "data" / "vox1_test" / "wav.scp")
    assert "id10004-s03-Ab_0xYz-00001" in utts  # session ids may hold '-' and '_'


def test_lhotse_manifests_match_kaldi_files(vox1_layout, tmp_path):
    from lhotse import CutSet, RecordingSet, SupervisionSet

    assert run(vox1_layout, tmp_path / "data") == 0
    d = tmp_path / "data" / "vox1_dev"
    recs = RecordingSet.from_file(d / "recordings.jsonl.gz").to_eager()
    sups = SupervisionSet.from_file(d / "supervisions.jsonl.gz")
    cuts = CutSet.from_file(d / "cuts.jsonl.gz")
    utt2spk = read_table(d / "utt2spk")
    assert sorted(recs.ids) == sorted(utt2spk)
    assert {s.id: s.speaker for s in sups} == utt2spk
    cut = next(iter(cuts))
    assert cut.supervisions[0].speaker == utt2spk[cut.recording_id]
    assert cut.load_audio().shape == (1, 16000)
    assert recs[cut.recording_id].duration == pytest.approx(1.0)


def test_trial_list_becomes_kaldi_trials(vox1_layout, tmp_path):
    assert run(vox1_layout, tmp_path / "data") == 0
    trials = read_trials(tmp_path / "data" / "vox1_test" / "trials" / "vox1_O")
    src = (vox1_layout / "veri_test2.txt").read_text().splitlines()
    assert len(trials) == len(src) == 9
    label, enroll, test = src[0].split()
    assert trials[0] == (enroll[:-4].replace("/", "-"), test[:-4].replace("/", "-"), "target" if label == "1" else "nontarget")
    assert sum(t[2] == "target" for t in trials) == 3


def test_list_naming_dev_utterances_needs_an_all_set(vox1_layout, tmp_path):
    (vox1_layout / "list_test_all2.txt").write_text(
        "1 id10001/s00-Ab_0xYz/00001.wav id10001/s00-Ab_1xYz/00002.wav\n"
        "0 id10001/s00-Ab_0xYz/00001.wav id10005/s04-Ab_0xYz/00001.wav\n"
    )
    assert run(vox1_layout, tmp_path / "data") == 1
    assert run(vox1_layout, tmp_path / "data", "--all-name", "vox1_all") == 0
    assert len(read_trials(tmp_path / "data" / "vox1_all" / "trials" / "vox1_E")) == 2
    assert len(read_table(tmp_path / "data" / "vox1_all" / "utt2spk")) == 24


def test_pretrain_corpus_gets_a_single_set(vox1_layout, tmp_path):
    assert run(vox1_layout, tmp_path / "data", "--dev-name", "pretrain", "--test-name", "") == 0
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["pretrain"]


# --- bad input: each stops the stage naming the file (and line), leaves nothing that looks
# complete, and a rerun after the fix completes.

def _wav(rel: str) -> str:
    return f"wav/{rel}"


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:2000])


def _not_audio(path: Path) -> None:
    path.write_bytes(b"this is not a RIFF file at all\n" * 40)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _stereo(path: Path) -> None:
    x, sr = sf.read(path)
    sf.write(path, np.stack([x, x], 1), sr, subtype="PCM_16")


def _rate(path: Path) -> None:
    x, _ = sf.read(path)
    sf.write(path, x[::2], 8000, subtype="PCM_16")


BAD_AUDIO = {
    "truncated": (_truncate, "truncated"),
    "not-audio": (_not_audio, "not a readable audio file"),
    "empty": (_empty, "empty file"),
    "stereo": (_stereo, "2 channels"),
    "8kHz": (_rate, "8000 Hz"),
}


@pytest.mark.parametrize("kind", sorted(BAD_AUDIO))
def test_bad_audio_is_refused_naming_the_file(vox1_layout, tmp_path, capsys, kind):
    spoil, message = BAD_AUDIO[kind]
    victim = vox1_layout / "wav" / "id10005" / "s04-Ab_1xYz" / "00002.wav"
    good = victim.read_bytes()
    spoil(victim)
    data = tmp_path / "data"
    assert run(vox1_layout, data) == 1
    err = capsys.readouterr().err
    assert str(victim) in err and message in err
    assert not data.exists() or not any(data.rglob("wav.scp"))
    victim.write_bytes(good)
    assert run(vox1_layout, data) == 0
    assert (data / "vox1_test" / "trials" / "vox1_O").is_file()


def test_meta_row_with_wrong_columns_names_file_and_line(vox1_layout, tmp_path, capsys):
    meta = vox1_layout / "vox1_meta.csv"
    good = meta.read_text()
    lines = good.splitlines()
    lines[3] = lines[3].replace("\tNowhere", "")
    meta.write_text("\n".join(lines) + "\n")
    assert run(vox1_layout, tmp_path / "data") == 1
    err = capsys.readouterr().err
    assert f"{meta}:4:" in err and "5 tab-separated columns, got 4" in err
    assert not (tmp_path / "data").exists()
    meta.write_text(good)
    assert run(vox1_layout, tmp_path / "data") == 0


def test_trial_naming_missing_file_names_list_and_line(vox1_layout, tmp_path, capsys):
    trials = vox1_layout / "veri_test2.txt"
    good = trials.read_text()
    lines = good.splitlines()
    lines[4] = "0 id10005/s04-Ab_0xYz/00001.wav id10006/nosuchsess/00009.wav"
    trials.write_text("\n".join(lines) + "\n")
    assert run(vox1_layout, tmp_path / "data") == 1
    err = capsys.readouterr().err
    assert f"{trials}:5:" in err and "id10006/nosuchsess/00009.wav" in err
    assert not (tmp_path / "data").exists()
    trials.write_text(good)
    assert run(vox1_layout, tmp_path / "data") == 0


def test_duplicate_utterance_ids_are_refused(vox1_layout, tmp_path, capsys):
    # 'id10004/s03-Ab/0xYz-00001.wav' and 'id10004/s03-Ab_0xYz/...' can't collide, but a
    # session 'a-b' with '00001.wav' and a session 'a' with 'b-00001.wav' both give 'spk-a-b-00001'.
    src = vox1_layout / "wav" / "id10004" / "s03-Ab_0xYz" / "00001.wav"
    dup = vox1_layout / "wav" / "id10004" / "s03" / "Ab_0xYz-00001.wav"
    dup.parent.mkdir()
    shutil.copy(src, dup)
    assert run(vox1_layout, tmp_path / "data") == 1
    err = capsys.readouterr().err
    assert "duplicate utterance id 'id10004-s03-Ab_0xYz-00001'" in err and "s03-Ab_0xYz/00001.wav" in err
    shutil.rmtree(dup.parent)
    assert run(vox1_layout, tmp_path / "data") == 0


def test_failed_rerun_keeps_the_previous_complete_output(vox1_layout, tmp_path):
    data = tmp_path / "data"
    assert run(vox1_layout, data) == 0
    before = (data / "vox1_test" / "wav.scp").read_text()
    _empty(vox1_layout / "wav" / "id10004" / "s03-Ab_0xYz" / "00001.wav")
    assert run(vox1_layout, data) == 1
    assert (data / "vox1_test" / "wav.scp").read_text() == before
    assert not list(data.glob(".*tmp*"))
