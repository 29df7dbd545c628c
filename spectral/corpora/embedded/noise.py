"""Additive noise for the embedded corpus (stage corpus).

Three kinds, as in VoxCeleb-like recordings and MUSAN: stationary noise (coloured, with
optional mains hum and a fan-like resonance), babble (several background talkers from a
pool of synthetic voices) and music-like noise (harmonic notes on a beat with percussion).
They corrupt the recorded sessions and, drawn from other seeds, are written to
``<root>/noise/*.wav`` for augmentation (:mod:`.generate`). Every generator returns a
float64 signal with RMS 1.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from .phones import Inventory
from .synth import SAMPLE_RATE, synthesize
from .voice import draw_voice, vary_voice

#: Names of the noise kinds, in the order used for drawing.
NOISE_KINDS = ("stationary", "babble", "music")


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x**2)))
    return x / rms if rms > 0 else x


def stationary_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Coloured noise of ``n`` samples: a random slope (white to brown), maybe hum and a bump."""
    n_fft = scipy.fft.next_fast_len(n, real=True)
    spec = scipy.fft.rfft(rng.standard_normal(n_fft))
    f = np.maximum(scipy.fft.rfftfreq(n_fft, 1 / SAMPLE_RATE), 20.0)
    slope = rng.uniform(-6.0, 0.0)
    shape = 10 ** (slope * np.log2(f / 1000.0) / 20)
    if rng.random() < 0.5:  # fan, air conditioning: a broad resonance
        fc = rng.uniform(150.0, 2500.0)
        shape *= 1 + rng.uniform(1.0, 6.0) * np.exp(-0.5 * (np.log2(f / fc) / 0.4) ** 2)
    x = _unit_rms(scipy.fft.irfft(spec * shape, n_fft)[:n])
    if rng.random() < 0.3:  # mains hum
        mains = 50.0 if rng.random() < 0.5 else 60.0
        t = np.arange(n) / SAMPLE_RATE
        hum = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3, 5))
        x = x + rng.uniform(0.3, 1.0) * _unit_rms(hum)
    return _unit_rms(x)


def babble_pool(rng: np.random.Generator, inventory: Inventory, n_voices: int, seconds: float) -> np.ndarray:
    """Clean synthetic talkers for babble, shape (n_voices, seconds * 16000), float32.

    Each is a random speaker (either gender) of ``inventory`` talking for ``seconds``.
    """
    out = np.zeros((n_voices, int(round(seconds * SAMPLE_RATE))), dtype=np.float32)
    for i in range(n_voices):
        voice = draw_voice(rng, "m" if rng.random() < 0.5 else "f")
        out[i] = synthesize(vary_voice(voice, rng), inventory, seconds, rng)
    return out


def babble_noise(rng: np.random.Generator, n: int, pool: np.ndarray) -> np.ndarray:
    """``n`` samples of 3-7 talkers from ``pool`` at random offsets and levels (within 6 dB)."""
    k = int(rng.integers(3, 8))
    picks = rng.choice(pool.shape[0], size=k, replace=k > pool.shape[0])
    out = np.zeros(n)
    length = pool.shape[1]
    for p in picks:
        idx = (int(rng.integers(length)) + np.arange(n)) % length
        out += 10 ** (rng.uniform(-6.0, 0.0) / 20) * pool[p, idx]
    return _unit_rms(out)


def music_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` samples of music-like noise: chords of harmonic notes on a beat, kick and hi-hat."""
    beat = 60.0 / rng.uniform(70.0, 150.0)
    root = rng.uniform(40.0, 58.0)  # MIDI note number
    scale = np.array([0, 2, 4, 7, 9] if rng.random() < 0.5 else [0, 3, 5, 7, 10])
    n_harm = int(rng.integers(3, 8))
    rolloff = rng.uniform(0.7, 1.6)
    decay = rng.uniform(0.15, 0.6)
    out = np.zeros(n + int(4 * beat * SAMPLE_RATE))
    n_beats = int(np.ceil(n / (beat * SAMPLE_RATE))) + 1
    table_size = 4096
    cycle = np.arange(table_size) / table_size
    harm = np.arange(1, n_harm + 1)[:, None]
    table = (np.sin(2 * np.pi * harm * cycle + rng.uniform(0, 2 * np.pi, (n_harm, 1))) * harm**-rolloff).sum(axis=0)
    for b in range(n_beats):
        start = int(b * beat * SAMPLE_RATE)
        for _ in range(int(rng.integers(1, 4))):
            midi = root + rng.choice(scale) + 12 * rng.integers(0, 2)
            f0 = 440.0 * 2 ** ((midi - 69) / 12)
            length = int(beat * rng.uniform(0.8, 2.5) * SAMPLE_RATE)
            t = np.arange(length) / SAMPLE_RATE
            env = np.minimum(t / 0.005, 1.0) * np.exp(-t / decay)
            idx = (np.arange(length) * (f0 * table_size / SAMPLE_RATE)).astype(np.int64) % table_size
            out[start : start + length] += rng.uniform(0.5, 1.0) * env * table[idx]
        if rng.random() < 0.7:  # kick: a falling low sine
            t = np.arange(int(0.12 * SAMPLE_RATE)) / SAMPLE_RATE
            kick = np.sin(2 * np.pi * (45 * t + 60 * 0.03 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.05)
            out[start : start + kick.size] += 1.5 * kick
        if rng.random() < 0.6:  # hi-hat on the off-beat: a short burst of differentiated noise
            hat = np.diff(rng.standard_normal(int(0.04 * SAMPLE_RATE) + 1))
            hat *= np.exp(-np.arange(hat.size) / (0.01 * SAMPLE_RATE))
            off = start + int(0.5 * beat * SAMPLE_RATE)
            out[off : off + hat.size] += 0.25 * hat
    return _unit_rms(out[:n])


def noise_of_kind(kind: str, rng: np.random.Generator, n: int, pool: np.ndarray | None) -> np.ndarray:
    """Dispatch to the generator of ``kind`` (one of :data:`NOISE_KINDS`)."""
    if kind == "stationary":
        return stationary_noise(rng, n)
    if kind == "babble":
        if pool is None:
            raise ValueError("babble noise needs a pool of voices")
        return babble_noise(rng, n, pool)
    if kind == "music":
        return music_noise(rng, n)
    raise ValueError(f"unknown noise kind {kind!r}; expected one of {NOISE_KINDS}")
