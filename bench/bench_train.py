"""Training-step speed and peak memory of every adapter method on the default model, beside full fine-tuning.

Each method runs in a fresh process (so peak resident memory is its own): the default
built-in backbone and back-end of ``conf/config.yaml`` (d=128, 4 layers; ECAPA C=64), the
adapter on q_proj/k_proj at the configured rank and k, batch and crop of the finetune
section, random fbank input, AdamW. "full" trains every backbone weight (the adapter method
``full``, full fine-tuning).

    python bench/bench_train.py [--steps 8] [--batch 32] [--crop-seconds 1.0] [--threads 2]

Prints a markdown table: method, trainable parameters, steps/s, ms/step, relative to
LoRA, peak RSS and its increase over the model alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

METHODS = ["frozen", "lora", "pissa", "milora", "dora", "spectralft", "spectralft_rot", "full"]


def one(method: str, steps: int, batch: int, crop: float, threads: int) -> dict:
    import torch

    from spectral.adapters import AdapterConfig, apply_adapters, count_trainable
    from spectral.models import BuiltinBackbone, SpeakerModel, adapter_root
    from spectral.train.config import resolve_config

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = resolve_config({})
    model = SpeakerModel(BuiltinBackbone(cfg.model.builtin), cfg.backend, 120)
    a = cfg.adapter.to_dict()
    a["method"] = method
    apply_adapters(adapter_root(model), AdapterConfig.from_dict(a))
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    frames = int(round(crop * 100))
    x = torch.randn(batch, frames, 80)
    y = torch.randint(0, 120, (batch,))
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        loss, _ = model.head(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    times.sort()
    median = times[len(times) // 2]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "method": method,
        "trainable": count_trainable(model),
        "backbone_trainable": count_trainable(adapter_root(model)),
        "step_s": median,
        "peak_mb": peak / 1024,
        "increase_mb": (peak - base_rss) / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per method (median reported; default 8)")
    parser.add_argument("--batch", type=int, default=32, help="batch size (default 32, the finetune default)")
    parser.add_argument("--crop-seconds", type=float, default=1.0, help="crop length in seconds (default 1.0)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--methods", nargs="+", default=METHODS, help="methods to run (default: all)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.steps, args.batch, args.crop_seconds, args.threads)))
        return 0
    rows = []
    for method in args.methods:
        out = subprocess.run(
            [sys.executable, __file__, "--one", method, "--steps", str(args.steps), "--batch", str(args.batch),
             "--crop-seconds", str(args.crop_seconds), "--threads", str(args.threads)],
            capture_output=True, text=True, check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{method}: {rows[-1]['step_s'] * 1000:.0f} ms/step", file=sys.stderr, flush=True)
    lora = next((r["step_s"] for r in rows if r["method"] == "lora"), None)
    print(f"\nbatch {args.batch} x {args.crop_seconds:g} s crops, {args.threads} threads, median of {args.steps} steps\n")
    print("| method | trainable (backbone) | trainable (all) | steps/s | ms/step | vs LoRA | peak RSS MB | +MB over model |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        rel = f"{r['step_s'] / lora:.2f}x" if lora else "-"
        print(f"| {r['method']} | {r['backbone_trainable']:,} | {r['trainable']:,} | {1 / r['step_s']:.2f} | "
              f"{r['step_s'] * 1000:.0f} | {rel} | {r['peak_mb']:.0f} | {r['increase_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
