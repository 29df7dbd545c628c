"""Synthetic room impulse responses for the embedded corpus (stage corpus).

Used twice: to reverberate the sessions recorded in rooms, and to write ``<root>/rir/*.wav``
for augmentation (:mod:`.generate`). A response is a direct path at time zero, early
reflections within the first 50 ms, and an exponentially decaying noise tail whose RT60
is shorter at high frequencies (air and wall absorption), scaled to a given
direct-to-reverberant ratio. Typical RT60 (``VOICE_MODEL.md``): 0.2-0.4 s in small rooms,
0.6-1.0 s in halls.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from .synth import SAMPLE_RATE

_BANDS = ((0.0, 1000.0, 1.15), (1000.0, 4000.0, 1.0), (4000.0, SAMPLE_RATE / 2 + 1, 0.6))  # (lo, hi, RT60 factor)


def room_impulse_response(rng: np.random.Generator, rt60: float, drr_db: float) -> np.ndarray:
    """One room impulse response at :data:`.synth.SAMPLE_RATE`.

    Args:
        rng: random generator.
        rt60: reverberation time (s) of the mid band; low frequencies ring 15 % longer,
            frequencies above 4 kHz 40 % shorter.
        drr_db: direct-to-reverberant energy ratio, dB.

    Returns:
        float64 response with the direct path (amplitude 1) at sample 0, long enough for the
        tail to decay by 60 dB (at most 1.2 s).
    """
    if rt60 <= 0:
        raise ValueError(f"rt60 must be positive, got {rt60!r}")
    n = int(min(1.15 * rt60 + 0.05, 1.2) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    h = np.zeros(n)
    h[0] = 1.0
    n_early = int(rng.integers(6, 16))
    times = rng.uniform(0.002, 0.05, n_early)
    amps = rng.uniform(0.15, 0.6, n_early) * (1.0 - times / 0.07) * rng.choice([-1.0, 1.0], n_early)
    np.add.at(h, np.minimum((times * SAMPLE_RATE).astype(np.int64), n - 1), amps)

    n_fft = scipy.fft.next_fast_len(n, real=True)
    spec = scipy.fft.rfft(rng.standard_normal(n_fft))
    freqs = scipy.fft.rfftfreq(n_fft, 1 / SAMPLE_RATE)
    tail = np.zeros(n)
    for lo, hi, factor in _BANDS:
        band = scipy.fft.irfft(np.where((freqs >= lo) & (freqs < hi), spec, 0), n_fft)[:n]
        tail += band * np.exp(-6.91 * t / (rt60 * factor))
    onset = rng.uniform(0.004, 0.02)
    tail *= np.clip((t - onset) / 0.01, 0.0, 1.0)
    direct = float(np.sum(h**2))
    tail *= np.sqrt(direct * 10 ** (-drr_db / 10) / max(float(np.sum(tail**2)), 1e-20))
    return h + tail
