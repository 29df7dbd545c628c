"""How far pre-training moved the top-k singular subspaces of the builtin backbone's target matrices.

For every target matrix (q_proj, k_proj by default) of a pretrain ``final.pt`` this compares
the top-k left (U) and right (V) singular subspaces with those of the same matrix at
initialisation, rebuilt from the checkpoint's own settings as the pretrain stage builds it
(``torch.manual_seed(pretrain.seed)``, then the builtin backbone first). The overlap is the
mean cos² of the principal angles, ||U0ᵀ U1||_F² / k: 1 = the same subspace, k / d for two
random ones (0.5 at k = 64, d = 128). Reads the checkpoint, prints one tab-separated line per
matrix and a summary; writes nothing.

    python bench/subspace_overlap.py exp/pretrain/builtin/final.pt --top-k 64
"""

from __future__ import annotations

import argparse
import re
import sys

import torch

from spectral.models import read_checkpoint
from spectral.models.builtin import BuiltinBackbone, BuiltinConfig


def overlap(a: torch.Tensor, b: torch.Tensor, k: int) -> tuple[float, float]:
    """(U-side, V-side) mean cos² of the principal angles between the top-k subspaces of ``a`` and ``b``."""
    ua, _, vha = torch.linalg.svd(a.double(), full_matrices=False)
    ub, _, vhb = torch.linalg.svd(b.double(), full_matrices=False)
    u = float((ua[:, :k].T @ ub[:, :k]).square().sum()) / k
    v = float((vha[:k] @ vhb[:k].T).square().sum()) / k
    return u, v


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a pretrain stage final.pt of the builtin backbone")
    parser.add_argument("--top-k", type=int, default=64, help="subspace dimension (the svd stage's top_k)")
    parser.add_argument("--targets", default="q_proj,k_proj", help="comma-separated module name suffixes")
    args = parser.parse_args(argv)
    ckpt = read_checkpoint(args.checkpoint)
    cfg = BuiltinConfig.from_dict(ckpt["config"]["model"]["builtin"])
    torch.manual_seed(int(ckpt["config"]["train"]["seed"]))
    init = BuiltinBackbone(cfg).state_dict()
    pattern = re.compile(r"\.(%s)\.weight$" % "|".join(map(re.escape, args.targets.split(","))))
    rows = []
    print("matrix\tU_overlap\tV_overlap")
    for name, w0 in init.items():
        if pattern.search(name):
            u, v = overlap(w0, ckpt["model"][f"backbone.{name}"], args.top_k)
            rows.append((u, v))
            print(f"{name}\t{u:.3f}\t{v:.3f}")
    if not rows:
        parser.error(f"no matrix matches {args.targets!r}")
    us, vs = [r[0] for r in rows], [r[1] for r in rows]
    print(f"summary\tU {min(us):.3f}-{max(us):.3f} (mean {sum(us) / len(us):.3f})\t"
          f"V {min(vs):.3f}-{max(vs):.3f} (mean {sum(vs) / len(vs):.3f})\tobjective "
          f"{ckpt['config']['train'].get('objective', 'speaker')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
