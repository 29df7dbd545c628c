"""Real VoxCeleb layouts, fabricated: VoxCeleb1 with its three cleaned lists (E and H name
dev utterances), VoxCeleb2-dev (m4a decoding and its error), and combining training sets."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from real_layouts import make_vox1_real

from spectral.corpora import combine, voxceleb1, voxceleb2
from spectral.data.kaldi import read_table, read_trials
from spectral.errors import InputError


@pytest.fixture(scope="module")
def vox1(tmp_path_factory) -> Path:
    return make_vox1_real(tmp_path_factory.mktemp("vox1real") / "VoxCeleb1")


def test_vox1_o_goes_to_the_test_set_and_e_h_to_the_all_set_with_an_overlap_warning(vox1, tmp_path, caplog):
    from spectral.features import compute_fbank

    with caplog.at_level(logging.WARNING, logger="spectral.prepare"):
        written = voxceleb1.prepare(vox1, tmp_path, all_name="vox1_all", all_trials=("vox1_E", "vox1_H"), progress=False)
    assert set(written) == {"vox1_dev", "vox1_test", "vox1_all"}
    assert sorted(p.name for p in (tmp_path / "vox1_test" / "trials").iterdir()) == ["vox1_O"]
    assert sorted(p.name for p in (tmp_path / "vox1_all" / "trials").iterdir()) == ["vox1_E", "vox1_H"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2 and all("overlaps the training set" in w for w in warned)
    assert any("(vox1_E)" in w for w in warned) and any("(vox1_H)" in w for w in warned)
    all_utts = read_table(tmp_path / "vox1_all" / "utt2spk")
    dev_utts = read_table(tmp_path / "vox1_dev" / "utt2spk")
    e = read_trials(tmp_path / "vox1_all" / "trials" / "vox1_E")
    assert {u for tr in e for u in tr[:2]} <= all_utts.keys()
    assert {u for tr in e for u in tr[:2]} & dev_utts.keys()  # the overlap the warning is about
    assert [t[2] for t in e[:2]] == ["target", "nontarget"]
    compute_fbank(tmp_path / "vox1_all", nj=1, progress=False)
    assert read_table(tmp_path / "vox1_all" / "feats.scp").keys() == all_utts.keys()


def test_all_trials_without_an_all_set_is_refused_by_the_command(vox1, tmp_path, capsys):
    with pytest.raises(SystemExit):
        voxceleb1.main(["--corpus-dir", str(vox1), "--data-dir", str(tmp_path), "--all-trials", "vox1_E"])
    assert "--all-trials needs --all-name" in capsys.readouterr().err


@pytest.fixture(scope="module")
def vox1_six(tmp_path_factory) -> Path:
    """VoxCeleb1 as released: all six lists (cleaned and original O, E, H) beside wav/."""
    return make_vox1_real(tmp_path_factory.mktemp("vox1six") / "VoxCeleb1", original_lists=True)


@pytest.mark.parametrize("configured", ["vox1_O", "vox1_O_orig"])
def test_only_the_configured_list_is_converted_and_the_others_are_logged_as_ignored(vox1_six, tmp_path, capsys, configured):
    # before: list_test_all2.txt stopped the stage ("names utterances outside the test set")
    assert voxceleb1.main(["--corpus-dir", str(vox1_six), "--data-dir", str(tmp_path), "--trials", configured,
                           "--no-progress"]) == 0
    err = capsys.readouterr().err  # the command logs to stderr (a message may come twice: another
    log = err.splitlines()         # test's scoring command may have added a handler of its own)
    assert sorted(p.name for p in (tmp_path / "vox1_test" / "trials").iterdir()) == [configured]
    assert not (tmp_path / "vox1_all").exists() and not (tmp_path / "vox1_dev" / "trials").exists()
    ignored = set(re.findall(r"/(\w+\.txt) \((\w+)\): not among the configured trial lists \((\w+)\), ignored", err))
    assert ignored == {(f, n, configured) for f, n in voxceleb1.TRIAL_LISTS.items() if n != configured}, log
    assert not any("overlaps the training set" in m for m in log)  # E/H never read


def test_configured_e_and_h_lists_go_to_the_all_set_and_the_rest_are_ignored(vox1_six, tmp_path):
    written = voxceleb1.prepare(vox1_six, tmp_path, all_name="vox1_all", all_trials=("vox1_E",),
                                trials=("vox1_O", "vox1_E"), progress=False)
    assert set(written) == {"vox1_dev", "vox1_test", "vox1_all"}
    assert [p.name for p in (tmp_path / "vox1_test" / "trials").iterdir()] == ["vox1_O"]
    assert [p.name for p in (tmp_path / "vox1_all" / "trials").iterdir()] == ["vox1_E"]


def test_a_configured_list_missing_from_the_corpus_is_named(vox1, tmp_path):
    with pytest.raises(InputError, match=r"veri_test\.txt: missing: trial list vox1_O_orig is configured"):
        voxceleb1.prepare(vox1, tmp_path / "data", trials=("vox1_O_orig",), progress=False)
    assert not (tmp_path / "data").exists()


def test_an_unknown_trial_list_name_is_refused_by_the_command(vox1, tmp_path, capsys):
    with pytest.raises(SystemExit):
        voxceleb1.main(["--corpus-dir", str(vox1), "--data-dir", str(tmp_path), "--trials", "vox1_O,vox1_X"])
    assert "--trials: unknown list(s) vox1_X" in capsys.readouterr().err


def test_a_malformed_e_list_line_is_named(vox1, tmp_path):
    corpus = tmp_path / "VoxCeleb1"
    shutil.copytree(vox1, corpus)
    n = len((corpus / "list_test_all2.txt").read_text().splitlines())
    with open(corpus / "list_test_all2.txt", "a") as f:
        f.write("1 id10001/only-one-path.wav\n")
    with pytest.raises(InputError, match=rf"list_test_all2\.txt:{n + 1}: expected '1\|0 <enroll.wav> <test.wav>'"):
        voxceleb1.prepare(corpus, tmp_path / "data", all_name="vox1_all", progress=False)
    assert not (tmp_path / "data").exists()


def _vox2_tree(root: Path, vox1: Path, suffix: str = ".wav") -> Path:
    """A VoxCeleb2-dev tree (dev/aac/<spk>/<session>/<n>) reusing VoxCeleb1 audio under vox2 ids."""
    for i, wav in enumerate(sorted((vox1 / "wav" / "id10001").rglob("*.wav"))):
        dest = root / "dev" / "aac" / f"id0001{i % 2}" / f"sess{i // 2}" / f"{i + 1:05d}{suffix}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(wav, dest)
    return root


def test_vox2_wav_copies_are_prepared_and_combined_with_vox1_dev(vox1, tmp_path):
    voxceleb1.prepare(vox1, tmp_path / "data", test_name=None, progress=False)
    vox2 = _vox2_tree(tmp_path / "VoxCeleb2", vox1)
    d = voxceleb2.prepare(vox2, tmp_path / "data", progress=False)
    utt2spk = read_table(d / "utt2spk")
    assert utt2spk == {"id00010-sess0-00001": "id00010", "id00011-sess0-00002": "id00011",
                       "id00010-sess1-00003": "id00010", "id00011-sess1-00004": "id00011"}
    out = combine.combine([tmp_path / "data" / "vox1_dev", d], tmp_path / "data" / "vox1_vox2_dev")
    both = read_table(out / "utt2spk")
    assert len(both) == len(read_table(tmp_path / "data" / "vox1_dev" / "utt2spk")) + 4
    assert read_table(out / "wav.scp").keys() == both.keys()
    from lhotse import CutSet

    assert len(CutSet.from_file(out / "cuts.jsonl.gz")) == len(both)


def test_combining_sets_that_share_a_speaker_is_refused(vox1, tmp_path):
    voxceleb1.prepare(vox1, tmp_path / "a", test_name=None, progress=False)
    voxceleb1.prepare(vox1, tmp_path / "b", test_name=None, progress=False)
    with pytest.raises(InputError, match=r"wav\.scp: utterance 'id10001-.*' is also in"):
        combine.combine([tmp_path / "a" / "vox1_dev", tmp_path / "b" / "vox1_dev"], tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_an_m4a_no_backend_can_read_is_a_clear_error_naming_the_file(vox1, tmp_path):
    vox2 = _vox2_tree(tmp_path / "VoxCeleb2", vox1)
    bad = vox2 / "dev" / "aac" / "id00010" / "sess0" / "00001.m4a"
    (bad.parent / "00001.wav").unlink()
    bad.write_bytes(b"\x00\x00\x00\x18ftypM4A not really AAC")  # an m4a header and no audio
    with pytest.raises(InputError) as err:
        voxceleb2.prepare(vox2, tmp_path / "data", progress=False)
    assert str(err.value).startswith(f"{bad}: cannot decode audio with lhotse's backends")
    if not shutil.which("ffmpeg"):  # what this machine has: no backend reads AAC at all
        assert "install ffmpeg" in str(err.value)
    assert not (tmp_path / "data" / "vox2_dev").exists()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg: lhotse cannot decode AAC here")
def test_an_m4a_is_decoded_to_flac_through_lhotse(vox1, tmp_path):  # pragma: no cover - needs ffmpeg
    import subprocess

    vox2 = _vox2_tree(tmp_path / "VoxCeleb2", vox1)
    src = vox2 / "dev" / "aac" / "id00010" / "sess0" / "00001.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(src), "-c:a", "aac", str(src.with_suffix(".m4a"))],
                   check=True)
    src.unlink()
    d = voxceleb2.prepare(vox2, tmp_path / "data", progress=False)
    flac = read_table(d / "wav.scp")["id00010-sess0-00001"]
    assert flac.endswith("audio/id00010/sess0/00001.flac")
    assert sf.info(flac).samplerate == 16000 and sf.info(flac).channels == 1
