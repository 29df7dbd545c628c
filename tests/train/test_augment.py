"""Stage augment: MUSAN and RIRS_NOISES trees (and plain directories) -> lhotse manifests -> augmented
training batches; bad directories, files and manifests are named."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from train_fixtures import tiny_cfg, tiny_data  # noqa: F401  (fixtures)

from spectral.augment import RecordingPool, layout, load_manifest, prepare_recordings, write_manifest
from spectral.errors import InputError
from spectral.train.config import AugmentConfig, resolve_config
from spectral.train.data import SpeakerData

REPO = Path(__file__).resolve().parents[2]
STAGE = REPO / "steps" / "make_augment_manifest.sh"


def _wav(path: Path, samples: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples.astype(np.float32), 16000)


def make_musan(root: Path) -> Path:
    """MUSAN's layout (openslr 17): music/<source>/, speech/<source>/, noise/<source>/ with ANNOTATIONS."""
    rng = np.random.default_rng(1)
    for part, source in (("music", "fma"), ("speech", "librivox"), ("noise", "free-sound")):
        for i in range(2):
            _wav(root / part / source / f"{part}-{source}-{i:04d}.wav", 0.1 * rng.standard_normal(12000 + 3000 * i))
    (root / "music" / "fma" / "ANNOTATIONS").write_text("music-fma-0000 rock N someone\nmusic-fma-0001 jazz Y other\n")
    (root / "README").write_text("MUSAN\n")
    return root


def make_rirs_noises(root: Path) -> Path:
    """RIRS_NOISES' layout (openslr 28): simulated rooms, real RIRs and isotropic noises, point-source noises."""
    rng = np.random.default_rng(2)
    decay = np.exp(-np.arange(2400) / 250.0)
    for room in ("smallroom", "mediumroom"):
        for i in range(2):
            _wav(root / "simulated_rirs" / room / "Room001" / f"Room001-0000{i + 1}.wav", decay * rng.standard_normal(2400))
    real = root / "real_rirs_isotropic_noises"
    _wav(real / "RVB2014_type1_rir_largeroom1_near_angla.wav", np.stack([decay, 0.5 * decay], axis=1) * rng.standard_normal((2400, 1)))
    _wav(real / "RVB2014_type1_noise_largeroom1_1.wav", 0.1 * rng.standard_normal((4000, 2)))
    _wav(root / "pointsource_noises" / "noise-free-sound-0001.wav", 0.1 * rng.standard_normal(4000))
    return root


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("augtrees")
    return make_musan(root / "musan"), make_rirs_noises(root / "RIRS_NOISES")


def _stage(*args: str) -> subprocess.CompletedProcess:
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LC_ALL": "C"}
    return subprocess.run([str(STAGE), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def manifests(trees, tmp_path_factory) -> tuple[Path, Path]:
    """The shell stage's manifests of the two trees, default parts."""
    musan, rirs = trees
    out = tmp_path_factory.mktemp("augment")
    noise = out / "noise_recordings.jsonl.gz"
    rir = out / "rir_recordings.jsonl.gz"
    for kind, src, dest in (("noise", musan, noise), ("rir", rirs, rir)):
        run = _stage(kind, src, dest)
        assert run.returncode == 0, run.stdout + run.stderr
    return noise, rir


def _ids(path: Path) -> list[str]:
    with gzip.open(path, "rt") as fh:
        return [json.loads(line)["id"] for line in fh]


def test_the_stage_lists_musan_and_rirs_noises_through_lhotse_with_the_configured_parts(trees, manifests):
    assert layout(trees[0]) == "musan" and layout(trees[1]) == "rirs_noises"
    noise, rir = manifests
    # speech is left out by default; ids in C order
    assert _ids(noise) == ["music-fma-0000", "music-fma-0001", "noise-free-sound-0000", "noise-free-sound-0001"]
    assert _ids(rir) == ["medium-Room001-00001", "medium-Room001-00002", "small-Room001-00001", "small-Room001-00002"]
    assert not list(noise.parent.glob(".*tmp*"))
    every = prepare_recordings(trees[1], "rir", rirs_parts=["sim_rir", "real_rir"])
    assert "RVB2014_type1_rir_largeroom1_near_angla" in every.ids and "RVB2014_type1_noise_largeroom1_1" not in every.ids
    with_speech = prepare_recordings(trees[0], "noise", musan_parts=["speech"])
    assert list(with_speech.ids) == ["speech-librivox-0000", "speech-librivox-0001"]


def test_preparing_and_reading_never_touch_the_network(trees, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    path = write_manifest(prepare_recordings(trees[0], "noise"), tmp_path / "n.jsonl.gz")
    pool = RecordingPool(path, "noise")
    assert pool.read(0, 100, 500).shape == (500,)


def test_a_training_batch_mixes_in_manifest_noise_and_reverberation(tiny_data, manifests, tiny_cfg):
    noise, rir = manifests
    aug = AugmentConfig(noise_prob=1.0, reverb_prob=1.0, snr_min=5, snr_max=5)
    data = SpeakerData(tiny_data, "fbank", crop_seconds=0.5, augment=aug, noise=noise, rir=rir)
    clean = SpeakerData(tiny_data, "fbank", crop_seconds=0.5)
    used = {"noise": [], "rir": []}
    for kind, pool in (("noise", data.noises), ("rir", data.rirs)):
        read = pool.read
        pool.read = lambda i, *a, _read=read, _kind=kind, _pool=pool: used[_kind].append(_pool.recordings[i].id) or _read(i, *a)
    items = data.sample_batch(np.random.default_rng([1, 0, 0]), 8, 2)
    rngs = [np.random.default_rng([1, 0, 0, i]) for i in range(8)]
    x, y = data.batch(items, rngs, augment=True)
    x_clean, _ = clean.batch(items, [np.random.default_rng([1, 0, 0, i]) for i in range(8)], augment=False)
    assert x.shape == x_clean.shape == (8, 50, 80) and y.shape == (8,)
    assert all(not np.allclose(a, b) for a, b in zip(x.numpy(), x_clean.numpy()))
    assert used["noise"] and set(used["noise"]) <= set(_ids(noise))
    assert used["rir"] and set(used["rir"]) <= set(_ids(rir))
    again, _ = data.batch(items, [np.random.default_rng([1, 0, 0, i]) for i in range(8)], augment=True)
    assert np.array_equal(x.numpy(), again.numpy())


def test_pretrain_reads_the_manifests_it_is_given(tiny_data, manifests, tiny_cfg, tmp_path):
    from spectral.train.pretrain import pretrain

    tiny_cfg["augment"] = {"noise_prob": 0.5, "reverb_prob": 0.5}
    tiny_cfg["pretrain"].update(epochs=1, steps_per_epoch=2, bn_recalibration_batches=1)
    cfg = resolve_config(tiny_cfg)
    with pytest.raises(InputError, match="needs --noise-manifest"):
        pretrain(cfg, tiny_data, tmp_path / "none", progress=False)
    out = pretrain(cfg, tiny_data, tmp_path / "pre", progress=False, noise_manifest=str(manifests[0]), rir_manifest=str(manifests[1]))
    assert out.is_file()


def test_a_plain_directory_keeps_every_file_in_path_order(tmp_path):
    rng = np.random.default_rng(3)
    for name in ("b.wav", "a/z.wav", "a-c.flac", "a/y.wav"):
        path = tmp_path / "noise" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (0.1 * rng.standard_normal(800)).astype(np.float32), 16000)
    (tmp_path / "noise" / "notes.txt").write_text("not audio\n")
    recs = prepare_recordings(tmp_path / "noise", "noise")
    assert list(recs.ids) == ["a-y", "a-z", "a-c", "b"]  # sorted(pathlib.Path): a/ before a-c.flac


def test_a_resampled_recording_is_read_at_16_khz(tmp_path):
    sf.write(tmp_path / "n8k.wav", (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32), 8000)
    pool = RecordingPool(tmp_path, "noise")
    assert pool.num_samples(0) == 16000 and pool.whole(0).shape == (16000,)


@pytest.mark.parametrize("case", ["empty-dir", "missing-dir", "garbage-file", "zero-samples", "musan-part-missing",
                                  "musan-garbage", "musan-as-rir", "rirs-as-noise", "rirs-part-missing"])
def test_bad_directories_and_files_are_named(case, tmp_path, trees):
    import shutil

    src = tmp_path / "src"
    src.mkdir()
    kind, parts = "noise", {}
    if case == "empty-dir":
        (src / "sub").mkdir()
        named, message = src, "holds no .wav or .flac files"
    elif case == "missing-dir":
        src = tmp_path / "nowhere"
        named, message = src, "no such noise directory"
    elif case == "garbage-file":
        _wav(src / "good.wav", np.zeros(100))
        (src / "bad.wav").write_bytes(b"RIFF not really audio at all")
        named, message = src / "bad.wav", "cannot read audio"
    elif case == "zero-samples":
        _wav(src / "empty.wav", np.zeros(0))
        named, message = src / "empty.wav", "no audio samples"
    elif case == "musan-part-missing":
        shutil.copytree(trees[0] / "noise", src / "noise")
        named, message = src / "music", "no MUSAN music audio"
    elif case == "musan-garbage":
        shutil.copytree(trees[0], src, dirs_exist_ok=True)
        (src / "noise" / "free-sound" / "noise-free-sound-0009.wav").write_bytes(b"\x00" * 64)
        named, message = src / "noise" / "free-sound" / "noise-free-sound-0009.wav", "cannot read audio"
    elif case == "musan-as-rir":
        src, kind = trees[0], "rir"
        named, message = src, "is a MUSAN tree"
    elif case == "rirs-as-noise":
        src = trees[1]
        named, message = src, "is a RIRS_NOISES tree"
    else:
        shutil.copytree(trees[1] / "simulated_rirs", src / "simulated_rirs")
        kind, parts = "rir", {"rirs_parts": ["sim_rir", "real_rir"]}
        named, message = src / "real_rirs_isotropic_noises", "no RIRS_NOISES real_rir audio"
    with pytest.raises(InputError, match=message) as err:
        prepare_recordings(src, kind, **parts)
    assert err.value.path == str(named)


def test_the_shell_stage_stops_with_the_path_and_writes_nothing(tmp_path):
    (tmp_path / "noise").mkdir()
    dest = tmp_path / "out" / "noise_recordings.jsonl.gz"
    run = _stage("noise", tmp_path / "noise", dest)
    assert run.returncode == 1 and f"{tmp_path / 'noise'}: holds no .wav or .flac files" in run.stderr
    assert not dest.exists()
    run = _stage("--musan-parts", "music,drums", "noise", tmp_path / "noise", dest)
    assert run.returncode == 2 and "'music,drums'" in run.stderr


def test_bad_manifests_are_named(tmp_path, trees):
    with pytest.raises(InputError, match="no such noise manifest or directory"):
        RecordingPool(tmp_path / "missing.jsonl.gz", "noise")
    recs = prepare_recordings(trees[0], "noise")
    good = write_manifest(recs, tmp_path / "good.jsonl.gz")
    lines = gzip.open(good, "rt").read().splitlines()
    remote = json.loads(lines[1])
    remote["sources"][0].update(type="url", source="https://example.org/noise.wav")
    with gzip.open(tmp_path / "remote.jsonl.gz", "wt") as fh:
        fh.write("\n".join([lines[0], json.dumps(remote)]) + "\n")
    with pytest.raises(InputError, match="only local files") as err:
        load_manifest(tmp_path / "remote.jsonl.gz")
    assert err.value.path == str(tmp_path / "remote.jsonl.gz") and err.value.line == 2
    (tmp_path / "junk.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(InputError, match="not a lhotse recordings manifest"):
        load_manifest(tmp_path / "junk.jsonl.gz")
    moved = json.loads(lines[0])
    moved["sources"][0]["source"] = str(tmp_path / "gone.wav")
    with gzip.open(tmp_path / "moved.jsonl.gz", "wt") as fh:
        fh.write(json.dumps(moved) + "\n")
    with pytest.raises(InputError, match="gone.wav does not exist"):
        load_manifest(tmp_path / "moved.jsonl.gz")
