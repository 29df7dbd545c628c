"""Benchmark of spectral.adapters and the svd stage, side by side with what users would pick instead.

Prints, in one run:

1. a training step (forward, backward, SGD step) of ``spectralft`` beside our ``lora`` and
   Hugging Face peft's LoRA, on a WavLM-Large-shaped stack (24 transformer layers, hidden 1024,
   feed-forward 4096, 16 heads; adapters on q_proj and k_proj; k = 256, r = 16) and on a small
   default-sized stack (4 layers, hidden 256, k = 64, r = 8); goal <= 1.2x LoRA;
2. inference of the merged spectralft model beside the bare base model; goal <= 1.05x;
3. the svd stage's decomposition (``spectral.svd.decompose_weights``) on WavLM-Large shapes
   (24 layers of q, k, v, o 1024x1024 plus the 4096x1024 and 1024x4096 feed-forward matrices):
   full float64 SVD beside the exact Gram-matrix method and the randomised lowrank one, with
   the principal angles between their top-k subspaces; goal <= 60 s for the full
   decomposition on 2 cores. By default 6 of the 24 layers are decomposed and the times
   scaled by 4 (each matrix is independent); ``--svd-layers 24`` does them all.

The weights are random (the svd part uses a power-law spectrum like trained weights), since
only shapes matter for time. Run from the repository root:

    .venv/bin/python bench/bench_adapters.py                  # the full run, a few minutes on 2 cores
    .venv/bin/python bench/bench_adapters.py --layers 4 --svd-layers 2 --steps 2   # quick look

Timings are medians over ``--steps`` rounds after one warm-up round; the contenders of a
comparison run in turn within each round, so the ratios hold up on a shared, noisy machine
better than the absolute times do.
"""

from __future__ import annotations

import os

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. On a machine whose
# cores other jobs share, spinning threads make a 2-thread LAPACK SVD 5-30x slower (measured).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import copy
import math
import platform
import statistics
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spectral.adapters import AdapterConfig, adapter_layers, apply_adapters, decompose, merge_adapters
from spectral.svd import decompose_weights

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Block(nn.Module):
    """A pre-norm transformer layer named like WavLM's (attention.q_proj ..., feed_forward.*)."""

    def __init__(self, hidden: int, ffn: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attention = nn.Module()
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            setattr(self.attention, name, nn.Linear(hidden, hidden))
        self.feed_forward = nn.Module()
        self.feed_forward.intermediate_dense = nn.Linear(hidden, ffn)
        self.feed_forward.output_dense = nn.Linear(ffn, hidden)
        self.norm1 = nn.LayerNorm(hidden)
        self.norm2 = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.norm1(x)
        att = self.attention

        def split(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(att.q_proj(h)), split(att.k_proj(h)), split(att.v_proj(h))
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d)
        x = x + att.out_proj(y)
        ff = self.feed_forward
        return x + ff.output_dense(F.gelu(ff.intermediate_dense(self.norm2(x))))


class Stack(nn.Module):
    """``layers`` Blocks under ``encoder.layers``, as in WavLM/HuBERT."""

    def __init__(self, layers: int, hidden: int, ffn: int, heads: int) -> None:
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList(Block(hidden, ffn, heads) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.encoder.layers:
            x = layer(x)
        return x


@dataclass
class Shape:
    name: str
    layers: int
    hidden: int
    ffn: int
    heads: int
    batch: int
    frames: int
    top_k: int
    rank: int

    def describe(self) -> str:
        return (
            f"{self.name}: {self.layers} layers, hidden {self.hidden}, ffn {self.ffn}, {self.heads} heads; "
            f"input {self.batch}x{self.frames} frames; adapters on q_proj, k_proj, k={self.top_k}, r={self.rank}"
        )


def interleaved_medians(fns: dict[str, object], steps: int, warmup: int = 1) -> dict[str, float]:
    """Median wall time (s) of each ``fns[name]()``, running them in turn, round after round.

    Interleaving makes the ratios robust to the slow drift of a shared machine's load.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(warmup + steps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def sharing_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model``'s modules that shares its (frozen) parameters, to save memory."""
    return copy.deepcopy(model, memo={id(p): p for p in model.parameters()})


def quick_factors(model: nn.Module, top_k: int) -> dict[str, dict[str, torch.Tensor]]:
    """Top-k factors of the q/k matrices by a cheap randomised SVD (only speed is measured here)."""
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name.endswith(("q_proj", "k_proj")):
            out[name] = decompose(module.weight, top_k, method="lowrank", niter=1, compute_dtype=torch.float32)
    return out


def train_step_fn(model: nn.Module, x: torch.Tensor):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model(x).pow(2).mean().backward()
        opt.step()

    return step


def inference_fn(model: nn.Module, x: torch.Tensor):
    def run() -> None:
        with torch.no_grad():
            model(x)

    return run


def row(label: str, ours: float, ref: float | None, ref_label: str = "", goal: str = "") -> str:
    ratio = f"{ours / ref:6.3f}x" if ref else "   -   "
    ref_text = f"{ref:9.3f}s {ref_label}" if ref else ""
    return f"  {label:<44} {ours:9.3f}s   {ratio}  vs {ref_text:<28} {goal}"


def bench_training(shape: Shape, steps: int, use_peft: bool) -> None:
    print(f"\n[training step] {shape.describe()}")
    torch.manual_seed(0)
    base = Stack(shape.layers, shape.hidden, shape.ffn, shape.heads).requires_grad_(False)
    x = torch.randn(shape.batch, shape.frames, shape.hidden)
    factors = quick_factors(base, shape.top_k)
    lora = apply_adapters(sharing_copy(base), AdapterConfig(method="lora", rank=shape.rank))
    spec_cfg = AdapterConfig(method="spectralft", rank=shape.rank, top_k=shape.top_k)
    spec = apply_adapters(sharing_copy(base), spec_cfg, factors=factors)
    paths = {layer.choose_path(x) for layer in adapter_layers(spec).values()}
    spec_mat = apply_adapters(sharing_copy(base), spec_cfg, factors=factors)
    for layer in adapter_layers(spec_mat).values():
        layer.path = "materialised"
    fns = {"lora": train_step_fn(lora, x), "spectralft": train_step_fn(spec, x), "spectralft_mat": train_step_fn(spec_mat, x)}
    if use_peft:
        import peft

        cfg = peft.LoraConfig(r=shape.rank, lora_alpha=shape.rank, target_modules=["q_proj", "k_proj"])
        fns["peft"] = train_step_fn(peft.get_peft_model(sharing_copy(base), cfg), x)
    t = interleaved_medians(fns, steps)
    print(row("lora (ours)", t["lora"], t.get("peft"), "peft LoRA"))
    print(row(f"spectralft (auto path: {'/'.join(sorted(paths))})", t["spectralft"], t["lora"], "lora (ours)", "goal <= 1.2x"))
    if "peft" in t:
        print(row("spectralft", t["spectralft"], t["peft"], "peft LoRA", "goal <= 1.2x"))
    print(row("spectralft, W' materialised (forced)", t["spectralft_mat"], t["lora"], "lora (ours)"))


def bench_inference(shape: Shape, steps: int) -> None:
    print(f"\n[inference] {shape.describe()}")
    torch.manual_seed(0)
    base = Stack(shape.layers, shape.hidden, shape.ffn, shape.heads).requires_grad_(False).eval()
    x = torch.randn(shape.batch, shape.frames, shape.hidden)
    spec_cfg = AdapterConfig(method="spectralft", rank=shape.rank, top_k=shape.top_k)
    spec = apply_adapters(sharing_copy(base), spec_cfg, factors=quick_factors(base, shape.top_k)).eval()
    with torch.no_grad():
        for layer in adapter_layers(spec).values():
            for p in layer.adapter_parameters().values():
                p.normal_(0, 0.01)
    merged = merge_adapters(sharing_copy(spec))
    t = interleaved_medians(
        {"base": inference_fn(base, x), "merged": inference_fn(merged, x), "unmerged": inference_fn(spec, x)}, steps
    )
    print(row("spectralft merged", t["merged"], t["base"], "bare base model", "goal <= 1.05x"))
    print(row("spectralft unmerged (auto path)", t["unmerged"], t["base"], "bare base model"))


def power_law_weight(m: int, n: int, gen: torch.Generator, decay: float = 0.6) -> torch.Tensor:
    """A random m x n matrix whose singular values fall off roughly like i^-decay."""
    p = min(m, n)
    scale = torch.arange(1, p + 1, dtype=torch.float32).pow(-decay)
    left = torch.randn(m, p, generator=gen) / math.sqrt(m)
    right = torch.randn(p, n, generator=gen) / math.sqrt(n)
    return (left * scale) @ right


def bench_svd(layers: int, top_k: int, niter: int, oversample: int, decay: float) -> None:
    print(
        f"\n[svd stage] WavLM-Large shapes: {layers} layers x (q, k, v, o 1024x1024, fc1 4096x1024, "
        f"fc2 1024x4096) = {6 * layers} matrices, k={top_k}; spectra falling like i^-{decay:g}"
    )
    gen = torch.Generator().manual_seed(0)
    weights = {}
    for i in range(layers):
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            weights[f"encoder.layers.{i}.attention.{name}"] = power_law_weight(1024, 1024, gen, decay)
        weights[f"encoder.layers.{i}.feed_forward.intermediate_dense"] = power_law_weight(4096, 1024, gen, decay)
        weights[f"encoder.layers.{i}.feed_forward.output_dense"] = power_law_weight(1024, 4096, gen, decay)
    results, wall, cpu = {}, {}, {}
    for method in ("full", "gram", "lowrank"):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        results[method] = decompose_weights(
            weights, top_k, method=method, niter=niter, oversample=oversample, progress=False, dtype=torch.float64
        )
        wall[method] = time.perf_counter() - start_wall
        cpu[method] = time.process_time() - start_cpu
    scale = 24 / layers
    threads = torch.get_num_threads()
    print(
        f"  wall s for 24 layers{' (x%g, extrapolated; each matrix is independent)' % scale if layers != 24 else ''}; "
        f"in brackets CPU s / {threads} threads, what dedicated cores would take"
    )
    labels = {
        "full": "full SVD (float64, LAPACK gesdd)",
        "gram": "gram (float64 eigh of W W^T, exact)",
        "lowrank": f"lowrank (niter {niter}, oversample {oversample})",
    }
    for method in ("full", "gram", "lowrank"):
        ref = None if method == "full" else wall["full"] * scale
        label = f"{labels[method]} [{cpu[method] * scale / threads:.0f} s]"
        print(row(label, wall[method] * scale, ref, "full SVD", "goal <= 60 s" if method == "full" else ""))
    full, full_stats = results["full"]
    for method in ("gram", "lowrank"):
        other, other_stats = results[method]
        worst, mean, overlap, error_ratio, sval = [], [], [], [], []
        for name in weights:
            pairs = (("U", full[name]["U"], other[name]["U"]), ("V", full[name]["Vh"].T, other[name]["Vh"].T))
            for _, fu, ou in pairs:
                # sines of the principal angles: singular values of (I - F F^T) O; accurate when small
                sines = torch.linalg.svdvals(ou - fu @ (fu.T @ ou)).clamp(max=1.0)
                angles = torch.rad2deg(torch.arcsin(sines))
                worst.append(float(angles.max()))
                mean.append(float(angles.mean()))
                overlap.append(float(1 - sines.pow(2).mean()))
            error_ratio.append(other_stats[name]["reconstruction_error"] / full_stats[name]["reconstruction_error"])
            s_full = full[name]["S"][:top_k].double()
            sval.append(float(((other[name]["S"][:top_k].double() - s_full).abs() / s_full).max()))
        print(
            f"  {method} vs full, top-{top_k} subspaces (left and right): principal angles mean {statistics.mean(mean):.2e} deg, "
            f"largest {max(worst):.2e} deg; overlap ||U_full^T U||_F^2 / k min {min(overlap):.4f}; "
            f"top-k singular values within {max(sval):.1e} (relative); rank-k reconstruction error / full's: "
            f"max {max(error_ratio):.4f}x"
        )
    print(
        "  (lowrank's largest angles are the directions near index k, where the spectral gap is small;"
        " the reconstruction error is what the adapters feel)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Time spectralft against LoRA (ours and peft), merged inference against the base "
        "model, and full against lowrank SVD; prints ratios.",
        epilog="example:\n  .venv/bin/python bench/bench_adapters.py --layers 4 --svd-layers 2 --steps 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--layers", type=int, default=24, help="layers of the WavLM-Large-shaped stack (default: 24)")
    parser.add_argument("--batch", type=int, default=2, help="utterances per step on the large stack (default: 2)")
    parser.add_argument("--frames", type=int, default=100, help="frames per utterance on the large stack, 50 per second in WavLM (default: 100)")
    parser.add_argument("--small-batch", type=int, default=8, help="utterances per step on the small stack (default: 8)")
    parser.add_argument("--small-frames", type=int, default=150, help="frames per utterance on the small stack (default: 150)")
    parser.add_argument("--steps", type=int, default=3, help="timed repetitions per measurement, after one warm-up (default: 3)")
    parser.add_argument(
        "--svd-layers", type=int, default=6,
        help="layers of WavLM-Large shapes to decompose, times extrapolated to 24; 24 measures all; 0 skips (default: 6)",
    )
    parser.add_argument("--niter", type=int, default=4, help="lowrank power iterations, as the stage's default (default: 4)")
    parser.add_argument("--oversample", type=int, default=10, help="lowrank oversampling, as the stage's default (default: 10)")
    parser.add_argument("--decay", type=float, default=0.6, help="power-law exponent of the synthetic spectra (default: 0.6)")
    parser.add_argument(
        "--only", choices=("training", "inference", "svd"), default=None, help="run one part only (default: all)"
    )
    parser.add_argument("--no-peft", action="store_true", help="skip the peft LoRA reference")
    parser.add_argument("--skip-small", action="store_true", help="skip the small default-sized stack")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 keeps torch's default (default: 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"bench_adapters: torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), load average {load[0]:.2f}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; python {sys.version.split()[0]}"
    )
    print("times are medians; on a shared machine read the ratios (runs made moments apart)")
    start = time.perf_counter()
    large = Shape("WavLM-Large-shaped", args.layers, 1024, 4096, 16, args.batch, args.frames, 256, 16)
    small = Shape("small default-sized", 4, 256, 1024, 4, args.small_batch, args.small_frames, 64, 8)
    use_peft = not args.no_peft
    if use_peft:
        try:
            import peft  # noqa: F401
        except ImportError:
            print("peft is not installed: the peft LoRA reference is skipped")
            use_peft = False
    if args.only in (None, "training"):
        bench_training(large, args.steps, use_peft)
        if not args.skip_small:
            bench_training(small, args.steps, use_peft)
    if args.only in (None, "inference"):
        bench_inference(large, args.steps)
    if args.svd_layers > 0 and args.only in (None, "svd"):
        bench_svd(args.svd_layers, 256, args.niter, args.oversample, args.decay)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
