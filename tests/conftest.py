"""Shared fixtures: small fabricated corpora laid out exactly like the real ones."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def voiced_audio(rng: np.random.Generator, seconds: float, f0: float, sr: int = 16000) -> np.ndarray:
    """A crude voiced signal: harmonics of a gliding f0 through two resonances, plus noise."""
    t = np.arange(int(seconds * sr)) / sr
    f = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(np.sin(h * phase) / h for h in range(1, 30))
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(x.size, 1 / sr)
    for fc, bw in ((500 * f0 / 120, 80), (1500 * f0 / 120, 120)):
        spec *= 1 + 8 / (1 + ((freqs - fc) / bw) ** 2)
    x = np.fft.irfft(spec, n=x.size) + 0.01 * rng.standard_normal(x.size)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def make_vox1_layout(
    root: Path,
    dev: int = 3,
    test: int = 3,
    sessions: int = 2,
    utts: int = 2,
    seconds: float = 1.0,
    seed: int = 0,
) -> Path:
    """Write a tiny VoxCeleb1 tree: wav/<spk>/<session>/<nnnnn>.wav, vox1_meta.csv, veri_test2.txt."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lines = ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"]
    files: dict[str, list[str]] = {}
    for i in range(dev + test):
        spk = f"id{10001 + i}"
        gender = "m" if i % 2 == 0 else "f"
        split = "dev" if i < dev else "test"
        lines.append(f"{spk}\tPerson_{i}\t{gender}\tNowhere\t{split}")
        for s in range(sessions):
            session = f"s{i:02d}-Ab_{s}xYz"[:11]
            for u in range(utts):
                rel = f"{spk}/{session}/{u + 1:05d}.wav"
                path = root / "wav" / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                f0 = 110 + 12 * i if gender == "m" else 200 + 12 * i
                sf.write(path, voiced_audio(rng, seconds, f0), 16000, subtype="PCM_16")
                files.setdefault(spk, []).append(rel)
    (root / "vox1_meta.csv").write_text("\n".join(lines) + "\n")
    test_spks = [f"id{10001 + i}" for i in range(dev, dev + test)]
    trials = []
    for a in test_spks:
        for b in test_spks:
            label = "1" if a == b else "0"
            trials.append(f"{label} {files[a][0]} {files[b][-1]}")
    (root / "veri_test2.txt").write_text("\n".join(trials) + "\n")
    return root


@pytest.fixture
def vox1_layout(tmp_path: Path) -> Path:
    """A fabricated VoxCeleb1-layout corpus (3 dev, 3 test speakers) in a temporary directory."""
    return make_vox1_layout(tmp_path / "vox1")


@pytest.fixture
def venv_env() -> dict[str, str]:
    """Environment for subprocesses: the running interpreter's bin first on PATH, C locale."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env["LC_ALL"] = "C"
    env["PYTHONUNBUFFERED"] = "1"
    return env
