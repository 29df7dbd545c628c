"""Fixtures of the training tests (imported by name: a second conftest.py would shadow tests/conftest.py). A tiny prepared data directory with fbank, and tiny model/training settings, shared by the training tests."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf



def _make_vox1_layout():
    """tests/conftest.py's make_vox1_layout, loaded by path (two conftest modules share the name)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("spectral_tests_root_conftest", Path(__file__).resolve().parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_vox1_layout


TINY = {
    "model": {"builtin": {"d_model": 16, "num_layers": 2, "num_heads": 2, "ffn_dim": 32}},
    "backend": {"channels": 16, "scale": 4, "se_bottleneck": 8, "attention_channels": 8, "embed_dim": 8},
    "adapter": {"method": "spectralft", "rank": 2, "top_k": 4},
    "pretrain": {"epochs": 2, "batch_size": 8, "crop_seconds": 0.4, "checkpoint_every": 1, "threads": 1},
    "finetune": {"epochs": 2, "batch_size": 8, "crop_seconds": 0.4, "checkpoint_every": 1, "threads": 1},
}


@pytest.fixture
def tiny_cfg() -> dict:
    """Tiny settings for every training section (a fresh copy per test)."""
    return copy.deepcopy(TINY)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """data/vox1_dev of a fabricated corpus (4 speakers x 4 utterances of 1 s) with fbank, plus noise/ and rir/."""
    make_vox1_layout = _make_vox1_layout()
    from spectral.corpora.voxceleb1 import main as prepare
    from spectral.features import compute_fbank

    root = tmp_path_factory.mktemp("traindata")
    corpus = make_vox1_layout(root / "vox1", dev=4, test=2, sessions=2, utts=2, seconds=1.0, seed=3)
    rng = np.random.default_rng(0)
    (corpus / "noise").mkdir()
    (corpus / "rir").mkdir()
    sf.write(corpus / "noise" / "n1.wav", (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
    rir = np.exp(-np.arange(1600) / 200.0) * rng.standard_normal(1600)
    rir[0] = 1.0
    sf.write(corpus / "rir" / "r1.wav", (0.5 * rir / np.abs(rir).max()).astype(np.float32), 16000)
    assert prepare(["--corpus-dir", str(corpus), "--data-dir", str(root / "data")]) == 0
    compute_fbank(root / "data" / "vox1_dev", nj=1, progress=False)
    return root / "data" / "vox1_dev"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_data):
    """final.pt of one short pre-training run on ``tiny_data`` with the TINY settings."""
    from spectral.train.config import resolve_config
    from spectral.train.pretrain import pretrain

    cfg = {k: dict(v) for k, v in TINY.items()}
    cfg["pretrain"].update(epochs=1, steps_per_epoch=2)
    out = tmp_path_factory.mktemp("pre")
    pretrain(resolve_config(cfg), tiny_data, out, progress=False)
    return out / "final.pt"
