"""Benchmark of the drift stage beside the svd stage on WavLM-Large shapes (goal: drift <= 2x svd).

The matrices are the q_proj and k_proj weights (1024 x 1024) of every layer of a randomly
initialised WavLM-Large (``transformers.WavLMConfig`` with hidden 1024, 24 layers, 16 heads,
feed-forward 4096; nothing is downloaded), k = 256 as in the paper. W' is W plus a rank-32
update of 1 % of ||W|| (what a fine-tuned adapter leaves; only shapes and ranks matter for
time). Timed, in turn within each round (medians over ``--rounds`` after one warm-up):

* svd:   :func:`spectral.svd.decompose_weights` (the svd stage's work, full float64 SVD);
* drift: :func:`spectral.drift.drift_of_weights` with the svd stage's factors (the drift
  stage's work: SVD of W', singular values of ΔW, the projections).

Loading checkpoints is left out of both (it is the same reading for both stages). Run from
the repository root:

    .venv/bin/python bench/bench_drift.py                     # all 24 layers, a few minutes on 2 cores
    .venv/bin/python bench/bench_drift.py --layers 4 --rounds 2   # quick look; the ratio is per matrix
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_adapters.py
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse
import platform
import statistics
import time

import torch

from spectral.drift import drift_of_weights, summarise
from spectral.svd import decompose_weights


def wavlm_large_weights(layers: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """q_proj/k_proj weights of a random WavLM-Large (``layers`` of its 24), keyed by module name."""
    from transformers import WavLMConfig, WavLMModel

    config = WavLMConfig(hidden_size=1024, num_hidden_layers=layers, num_attention_heads=16, intermediate_size=4096,
                         do_stable_layer_norm=True, feat_extract_norm="layer")
    torch.manual_seed(seed)
    model = WavLMModel(config)
    return {name: module.weight.detach().clone() for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name.endswith(("q_proj", "k_proj"))}


def fine_tuned(weights: dict[str, torch.Tensor], rank: int = 32, seed: int = 1) -> dict[str, torch.Tensor]:
    """W + a rank-``rank`` update of 1 % of ||W||_F per matrix, in float32 as final.pt stores it."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, w in weights.items():
        m, n = w.shape
        d = torch.randn(m, rank, generator=g) @ torch.randn(rank, n, generator=g)
        out[name] = (w + 0.01 * d * (w.norm() / d.norm())).float()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=24, help="WavLM-Large layers to build (default: all 24)")
    parser.add_argument("--top-k", type=int, default=256, help="k (default: 256, the paper's)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after one warm-up (default: 3)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 keeps torch's default")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    weights = wavlm_large_weights(args.layers)
    new = fine_tuned(weights)
    print(f"{len(weights)} matrices of {tuple(next(iter(weights.values())).shape)}, k = {args.top_k}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    times: dict[str, list[float]] = {"svd": [], "drift": []}
    rows = None
    for round_ in range(args.rounds + 1):
        t0 = time.perf_counter()
        factors, _ = decompose_weights(weights, args.top_k, progress=False)
        t1 = time.perf_counter()
        rows = drift_of_weights(weights, new, args.top_k, targets=["q_proj", "k_proj"], factors=factors)
        t2 = time.perf_counter()
        if round_:
            times["svd"].append(t1 - t0)
            times["drift"].append(t2 - t1)
    svd, drift = statistics.median(times["svd"]), statistics.median(times["drift"])
    s = summarise(rows)
    print(f"svd stage (full float64 SVD):  {svd:8.2f} s   ({svd / len(weights):.3f} s per matrix)")
    print(f"drift stage (with factors):    {drift:8.2f} s   ({drift / len(weights):.3f} s per matrix)")
    print(f"ratio drift / svd:             {drift / svd:8.2f}x   (goal <= 2x)")
    print(f"sanity: mean delta rank {s['delta_rank']:.1f} (32 planted), mean share in the top-k block "
          f"{s['share_block']:.3f} (random: (256/1024)^2 = 0.0625)")


if __name__ == "__main__":
    main()
