"""Fbank throughput of our features stage beside kaldi-native-fbank, one core, same audio.

Prints seconds of audio processed per second of wall time for:
  ours            spectral.features.FbankExtractor (lhotse's Kaldi fbank in float64)
  lhotse-float32  lhotse's Fbank().extract as shipped
  knf             kaldi-native-fbank OnlineFbank, frames read back as numpy (how Python users call it)
and the ratio ours / knf (goal: >= 1, at least as fast as kaldi-native-fbank).

    python bench/bench_features.py                      # 200 synthetic utterances of 2-8 s
    python bench/bench_features.py --wav-scp data/vox1_test/wav.scp --max-utts 300
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def synthetic(n: int, seed: int = 0) -> list[np.ndarray]:
    """n utterances of 2-8 s: harmonic tones with noise, on the 16-bit scale."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        t = np.arange(int(16000 * rng.uniform(2, 8))) / 16000
        f0 = rng.uniform(90, 250)
        x = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 20)) + 0.1 * rng.standard_normal(t.size)
        out.append(np.round(3000 * x).astype(np.float32))
    return out


def from_scp(path: str, max_utts: int) -> list[np.ndarray]:
    from spectral.data.audio import read_int16_scale
    from spectral.data.kaldi import read_table

    return [read_int16_scale(p) for p in list(read_table(path).values())[:max_utts]]


def knf_fbank(samples: np.ndarray) -> np.ndarray:
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = False
    opts.mel_opts.num_bins = 80
    opts.mel_opts.high_freq = -400.0
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(16000, samples)
    fb.input_finished()
    return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])


def timed(fn, utts, repeats: int) -> float:
    fn(utts[0])  # warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for u in utts:
            fn(u)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wav-scp", help="measure on these files instead of synthetic audio")
    p.add_argument("--max-utts", type=int, default=200, help="utterances (default %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="best of N runs (default %(default)s)")
    args = p.parse_args()

    import torch
    from lhotse.features.kaldi.extractors import Fbank

    from spectral.features import FbankExtractor, fbank_config

    torch.set_num_threads(1)
    utts = from_scp(args.wav_scp, args.max_utts) if args.wav_scp else synthetic(args.max_utts)
    audio = sum(u.size for u in utts) / 16000
    ours = FbankExtractor()
    lhotse32 = Fbank(fbank_config())
    contenders = {
        "ours": ours,
        "lhotse-float32": lambda u: lhotse32.extract(u, 16000),
        "knf": knf_fbank,
    }
    print(f"{len(utts)} utterances, {audio:.0f} s of audio, one thread, load {os.getloadavg()[0]:.2f}")
    speed = {}
    for name, fn in contenders.items():
        speed[name] = audio / timed(fn, utts, args.repeats)
        print(f"  {name:15s} {speed[name]:8.0f} s of audio per second ({speed[name] / 3600:.2f} h/s)")
    print(f"ratio ours / knf: {speed['ours'] / speed['knf']:.2f}x  (goal >= 1.00)")


if __name__ == "__main__":
    main()
