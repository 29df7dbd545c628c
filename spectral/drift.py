"""Stage drift: where a fine-tuned system's update went, per matrix, against the pre-trained spectrum.

For every adapted matrix (every target of the system's adapter; for ``full`` every
``nn.Linear`` of the backbone) with W the pre-trained weight, W' the merged fine-tuned one,
ΔW = W' - W and U_k, V_k the top-k singular vectors of W (k = ``top_k``):

``cos2_mean_left``, ``angle_max_left_deg``
    principal angles between span(U_k) and the top-k left singular subspace of W': the mean
    of their squared cosines (1 = the same subspace; k/m on average for a random one) and
    the largest angle in degrees; ``*_right`` the same for V_k;
``share_block``, ``share_left``, ``share_right``, ``share_outside``
    the split of ||ΔW||_F^2 into four orthogonal parts: inside the top-k block,
    ||U_k^T ΔW V_k||^2; inside the top-k rows only (left factor in span(U_k), right factor
    outside span(V_k)); inside the top-k columns only; outside both. They sum to 1; a
    random update of an m x n matrix puts k^2/(mn) in the block;
``sv_change_top``, ``sv_change_rest``
    ||s'_i - s_i||_2 / ||s_i||_2 over i <= k and over i > k (singular values of W' and W);
``rel_update``, ``delta_rank``
    ||ΔW||_F / ||W||_F and the numerical rank of ΔW: its singular values above
    ``rank_rtol`` x s_1(W), ``rank_rtol`` = max(m, n) x the machine epsilon of W' (W' is
    stored in float32, so ΔW carries rounding of that size on every entry).

A matrix the method did not change (``frozen``: ΔW = 0) is reported as ``updated`` false,
shares, changes and rank 0, angles 0 and cos² 1: never NaN.

Reads the system's ``final.pt`` (finetune stage), the pre-trained backbone (the pretrain
stage's ``final.pt`` for builtin, the transformers directory for wavlm/hubert) and
optionally the svd stage's ``factors.pt`` (U_k, V_k and s of W, so W is not decomposed
again); writes into the output directory, each atomically (temporary name, then rename):

``drift.tsv``   one row per matrix, the columns above plus name, layer, kind, target, shape, k;
``drift.json``  ``{"format": "spectral-drift/1", system, method, top_k, ..., "matrices": {name:
                row}, "summary": means over the target matrices}``;
``drift.png``   per matrix: the four shares of ||ΔW||^2 (stacked) and the subspace overlaps.

Pure functions (:func:`matrix_drift`, :func:`drift_of_weights`, :func:`summarise`) take
tensors and return dicts; the svd stage uses them for the drift of pre-training. Command
line: ``spectral-drift`` (see ``--help``); shell stage: ``steps/drift.sh``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from spectral.atomic import atomic_paths
from spectral.adapters.config import DEFAULT_DRIFT_TOP_K as DEFAULT_TOP_K, TOP_K_METHODS, matches_target
from spectral.adapters.decompose import decompose
from spectral.errors import InputError
from spectral.logutil import command_parser, log_invocation, run_main

log = logging.getLogger("spectral-drift")

DRIFT_FORMAT = "spectral-drift/1"
#: Per-matrix measures, in drift.tsv's column order (after name, layer, kind, target, shape, k).
MEASURES: tuple[str, ...] = (
    "updated",
    "rel_update",
    "share_block",
    "share_left",
    "share_right",
    "share_outside",
    "cos2_mean_left",
    "angle_max_left_deg",
    "cos2_mean_right",
    "angle_max_right_deg",
    "sv_change_top",
    "sv_change_rest",
    "delta_rank",
)


# -- the measures of one matrix -------------------------------------------------------------


def _ratio(num: float, den: float, fallback_den: float = 0.0) -> float:
    """num / den; 0 when num is 0 (nothing changed); num / ``fallback_den`` (else num) when den is 0."""
    if num == 0.0:
        return 0.0
    if den > 0.0:
        return num / den
    return num / fallback_den if fallback_den > 0.0 else num


def _decompose(weight: Tensor, top_k: int) -> dict[str, Tensor]:
    """Top-k triplets and every singular value of ``weight`` (float64).

    The exact Gram-matrix method of :func:`spectral.adapters.decompose.decompose` (about
    twice as fast as a full SVD, and accurate far beyond what the drift measures need),
    with the full SVD where the matrix's numerical rank is below k.
    """
    try:
        return decompose(weight, top_k, method="gram")
    except ValueError:
        return decompose(weight, top_k, method="full")


def numerical_rank(delta: Tensor, tol: float) -> int:
    """How many singular values of ``delta`` exceed ``tol``.

    Where it is accurate enough, from the eigenvalues of the smaller Gram matrix in float64
    (a fraction of the cost of the singular values): their absolute error, about
    eps64 x ||delta||^2, must stay 1e4 times below tol^2, which holds for float32 weights
    (tol >= 1e-5 s_1(W)); otherwise (float64 weights, tiny tol) from the singular values.
    """
    m, n = delta.shape
    d = delta.to(torch.float64)
    gram = d @ d.T if m <= n else d.T @ d
    if tol * tol > 1e4 * torch.finfo(torch.float64).eps * float(gram.trace()):
        return int((torch.linalg.eigvalsh(gram) > tol * tol).sum())
    return int((torch.linalg.svdvals(d) > tol).sum())


def principal_angles(A: Tensor, B: Tensor) -> Tensor:
    """Cosines of the principal angles between span(A) and span(B), descending, in [0, 1].

    ``A`` (m x k) and ``B`` (m x j) have orthonormal columns; returns min(k, j) cosines.
    """
    return torch.linalg.svdvals(A.T @ B).clamp(0.0, 1.0)


def _angle_stats(cos: Tensor) -> tuple[float, float]:
    """(mean cos², largest angle in degrees) of principal-angle cosines."""
    return float(cos.pow(2).mean()), math.degrees(math.acos(float(cos.min())))


def matrix_drift(
    weight: Tensor,
    new_weight: Tensor,
    top_k: int,
    *,
    factors: Mapping[str, Tensor] | None = None,
    new_factors: Mapping[str, Tensor] | None = None,
    rank_rtol: float | None = None,
) -> dict:
    """The drift measures (module docstring) of W' = ``new_weight`` against W = ``weight``.

    Takes two m x n matrices and k; ``factors`` (a factor dict of W, as the svd stage writes:
    "U" (m, >=k), "S", "Vh" (>=k, n)) spares the decomposition of W, ``new_factors`` that of W'.
    Arithmetic is float64. ``rank_rtol`` defaults to max(m, n) x eps of ``new_weight``'s dtype.
    Returns a dict of :data:`MEASURES` (``updated`` a bool, ``delta_rank`` an int, the rest
    floats, never NaN). Raises ValueError when the shapes differ or k exceeds min(m, n).
    """
    if weight.shape != new_weight.shape or weight.dim() != 2:
        raise ValueError(f"W is {tuple(weight.shape)} and W' {tuple(new_weight.shape)}: expected two equal 2-D shapes")
    m, n = weight.shape
    p = min(m, n)
    if not 1 <= top_k <= p:
        raise ValueError(f"top_k={top_k} is outside 1..min(m, n)={p} for a {m}x{n} matrix")
    eps = torch.finfo(new_weight.dtype).eps if new_weight.is_floating_point() else torch.finfo(torch.float64).eps
    rtol = max(m, n) * eps if rank_rtol is None else rank_rtol
    w = weight.detach().to(torch.float64)
    w_new = new_weight.detach().to(torch.float64)
    delta = w_new - w

    f = factors if factors is not None else _decompose(w, top_k)
    U = f["U"][:, :top_k].to(w)
    V = f["Vh"][:top_k].to(w).T
    s = f["S"].to(w)
    if s.numel() < p:  # a lowrank factors file holds the top singular values only
        s = torch.linalg.svdvals(w)
    g = new_factors if new_factors is not None else _decompose(w_new, top_k)
    U_new = g["U"][:, :top_k].to(w)
    V_new = g["Vh"][:top_k].to(w).T
    s_new = g["S"].to(w)
    if s_new.numel() < p:
        s_new = torch.linalg.svdvals(w_new)

    cos2_left, angle_left = _angle_stats(principal_angles(U, U_new))
    cos2_right, angle_right = _angle_stats(principal_angles(V, V_new))
    total = float(delta.pow(2).sum())
    w_norm = float(w.norm())
    out = {
        "updated": total > 0.0,
        "rel_update": _ratio(math.sqrt(total), w_norm),
        "cos2_mean_left": cos2_left,
        "angle_max_left_deg": angle_left,
        "cos2_mean_right": cos2_right,
        "angle_max_right_deg": angle_right,
        "sv_change_top": _ratio(float((s_new[:top_k] - s[:top_k]).norm()), float(s[:top_k].norm()), float(s.norm())),
        "sv_change_rest": _ratio(float((s_new[top_k:] - s[top_k:]).norm()), float(s[top_k:].norm()), float(s.norm())),
    }
    if total == 0.0:
        out.update(share_block=0.0, share_left=0.0, share_right=0.0, share_outside=0.0, delta_rank=0)
    else:
        left = U.T @ delta  # k x n: the rows of ΔW in span(U_k)
        block = float((left @ V).pow(2).sum())
        rows = float(left.pow(2).sum()) - block
        cols = float((delta @ V).pow(2).sum()) - block
        shares = [max(block, 0.0), max(rows, 0.0), max(cols, 0.0)]
        shares.append(max(total - sum(shares), 0.0))
        shares = [x / total for x in shares]
        out.update(share_block=shares[0], share_left=shares[1], share_right=shares[2], share_outside=shares[3])
        out["delta_rank"] = numerical_rank(delta, rtol * float(s[0]))
    return {key: out[key] for key in MEASURES}


# -- many matrices ---------------------------------------------------------------------------


def layer_and_kind(name: str) -> tuple[int | None, str]:
    """(layer number, last name part) of a module name: ``encoder.layers.3.attention.q_proj`` -> (3, "q_proj")."""
    numbers = re.findall(r"(?:^|\.)(\d+)(?:\.|$)", name)
    return (int(numbers[0]) if numbers else None), name.rsplit(".", 1)[-1]


def _find_factor(factors: Mapping[str, Mapping[str, Tensor]] | None, name: str):
    """The factor dict of ``name``, also under a longer key ending in ``.name`` (svd may keep 'backbone.')."""
    if not factors:
        return None
    if name in factors:
        return factors[name]
    hits = [k for k in factors if k.endswith("." + name)]
    return factors[hits[0]] if len(hits) == 1 else None


def drift_of_weights(
    weights: Mapping[str, Tensor],
    new_weights: Mapping[str, Tensor],
    top_k: int,
    *,
    targets: Sequence[str] = (),
    factors: Mapping[str, Mapping[str, Tensor]] | None = None,
    progress: bool = False,
) -> dict[str, dict]:
    """:func:`matrix_drift` of every matrix of ``weights`` against the same name in ``new_weights``.

    Returns {name: row}, each row the measures plus ``layer``, ``kind``, ``target`` (whether
    ``targets`` select the name), ``shape`` and ``k`` (top_k, capped at min(m, n)).
    ``factors`` (svd stage) are used where they hold the name and at least k triplets of a
    matrix of that shape. Raises ValueError naming a matrix missing from ``new_weights``.
    """
    missing = [name for name in weights if name not in new_weights]
    if missing:
        raise ValueError(f"the fine-tuned weights lack {len(missing)} matrix(es), e.g. {missing[0]!r}")
    rows: dict[str, dict] = {}
    for name, w in tqdm(weights.items(), desc="drift", unit="matrix", disable=not progress):
        k = min(top_k, *w.shape)
        f = _find_factor(factors, name)
        if f is not None and (tuple(f["U"].shape)[0] != w.shape[0] or f["U"].shape[1] < k or f["Vh"].shape[1] != w.shape[1]):
            f = None
        layer, kind = layer_and_kind(name)
        row = {"name": name, "layer": layer, "kind": kind, "target": bool(targets) and matches_target(name, targets),
               "shape": list(w.shape), "k": k}
        row.update(matrix_drift(w, new_weights[name], k, factors=f))
        rows[name] = row
    return rows


def summarise(rows: Mapping[str, dict], only_targets: bool = True) -> dict:
    """Means of every float measure over the rows (the target ones where any is a target).

    Returns {"matrices": n, "updated": how many changed, measure: mean, ...}; the shares of
    matrices that did not change are left out of their means (0 when none changed).
    """
    chosen = [r for r in rows.values() if r["target"]] if only_targets else []
    chosen = chosen or list(rows.values())
    out: dict = {"matrices": len(chosen), "updated": sum(1 for r in chosen if r["updated"])}
    moved = [r for r in chosen if r["updated"]]
    for key in MEASURES:
        if key == "updated":
            continue
        pool = moved if key.startswith("share_") else chosen
        out[key] = sum(float(r[key]) for r in pool) / len(pool) if pool else 0.0
    return out


# -- reading a system and its backbone ----------------------------------------------------------


def _linear_weights(root: torch.nn.Module, names: Sequence[str] | None) -> dict[str, Tensor]:
    out = {}
    for name, module in root.named_modules():
        if name and isinstance(module, torch.nn.Linear) and (names is None or name in names):
            out[name] = module.weight.detach()
    return out


def load_system(
    finetuned: str | Path, pretrained: str | Path
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict]:
    """(W by name, W' by name, info) of a fine-tuned ``final.pt`` and its pre-trained backbone.

    ``pretrained`` is the pretrain stage's ``final.pt`` (builtin backbone) or the transformers
    directory (wavlm/hubert). The matrices are the adapter's targets, or every ``nn.Linear``
    of the backbone for ``full``; names are those of the adapted module (``encoder.layers.N...``).
    ``info`` holds system, method, backbone, targets and top_k (the adapter's, or None).
    Raises InputError naming the file when a checkpoint is not what is expected, or when a
    backbone weight the method cannot change differs (the system was trained from another backbone).
    """
    from spectral.adapters.api import find_targets
    from spectral.models import ModelConfig, adapter_root, build_backbone, read_checkpoint
    from spectral.models.speaker import load_pretrained_builtin

    ckpt = read_checkpoint(finetuned)
    config = ckpt["config"]
    adapter = config.get("adapter")
    if not isinstance(adapter, Mapping):
        raise InputError(finetuned, "holds no adapter settings: a pretrain checkpoint, not a fine-tuned system")
    model_cfg = ModelConfig.from_dict(config["model"])
    method, targets = adapter["method"], list(adapter["targets"])
    if model_cfg.backbone == "builtin":
        root, _ = load_pretrained_builtin(pretrained, model_cfg.builtin)
        prefix = "backbone."
    else:
        path = Path(pretrained)
        if not (path / "config.json").is_file():
            raise InputError(path, "a wavlm/hubert backbone is a transformers directory with config.json")
        model_cfg.path = str(path)
        root = build_backbone(model_cfg).model
        prefix = "backbone.model."
    root.eval()
    every = _linear_weights(root, None)
    chosen = list(every) if method == "full" else find_targets(root, targets)
    if not chosen:
        raise InputError(finetuned, f"no nn.Linear of the backbone matches the adapter targets {targets}")
    new_state = ckpt["model"]
    new: dict[str, Tensor] = {}
    for name in every:
        key = f"{prefix}{name}.weight"
        if key not in new_state:
            raise InputError(finetuned, f"lacks {key!r}: its backbone is not the one {pretrained} holds")
        if tuple(new_state[key].shape) != tuple(every[name].shape):
            raise InputError(finetuned, f"{key!r} is {tuple(new_state[key].shape)}, the pre-trained one {tuple(every[name].shape)}")
        if name in chosen:
            new[name] = new_state[key]
        elif not torch.equal(new_state[key].to(every[name].dtype), every[name]):
            raise InputError(finetuned, f"{key!r} differs from {pretrained}, though method {method} does not train it: "
                                        "the system was fine-tuned from another backbone")
    info = {
        "system": str(ckpt.get("system", "")),
        "method": method,
        "backbone": model_cfg.backbone,
        "targets": targets,
        "adapter_top_k": int(adapter["top_k"]) if method in TOP_K_METHODS else None,
    }
    return {name: every[name] for name in chosen}, new, info


# -- writing ----------------------------------------------------------------------------------

TSV_COLUMNS: tuple[str, ...] = ("name", "layer", "kind", "target", "shape", "k") + MEASURES


def _cell(key: str, value) -> str:
    if key == "shape":
        return "x".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def tsv_text(rows: Mapping[str, dict]) -> str:
    """drift.tsv: a header, then one row per matrix in :data:`TSV_COLUMNS` order."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(TSV_COLUMNS)
    for row in rows.values():
        writer.writerow([_cell(c, row[c]) for c in TSV_COLUMNS])
    return buf.getvalue()


def plot_drift(rows: Mapping[str, dict], path: str | Path, title: str = "") -> None:
    """drift.png: per matrix, the four shares of ||ΔW||^2 stacked, and mean cos² of both subspaces."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    labels = [f"L{r['layer']}.{r['kind']}" if r["layer"] is not None else r["kind"] for r in rows.values()]
    xs = range(len(names))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6.0, 0.35 * len(names) + 2) + 2.2, 6.4), sharex=True)
    parts = [("share_block", "top-k block", "tab:blue"), ("share_left", "top-k rows only", "tab:cyan"),
             ("share_right", "top-k columns only", "tab:olive"), ("share_outside", "outside both", "tab:red")]
    base = [0.0] * len(names)
    for key, label, colour in parts:
        vals = [rows[n][key] for n in names]
        top.bar(xs, vals, bottom=base, color=colour, label=label, width=0.8)
        base = [b + v for b, v in zip(base, vals)]
    for i, n in enumerate(names):
        if not rows[n]["updated"]:
            top.text(i, 0.5, "no update", rotation=90, ha="center", va="center", fontsize=7)
    top.set_ylim(0, 1)
    top.set_ylabel("share of ||ΔW||²")
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    bottom.plot(xs, [rows[n]["cos2_mean_left"] for n in names], "o-", label="mean cos², left (U_k)")
    bottom.plot(xs, [rows[n]["cos2_mean_right"] for n in names], "s--", label="mean cos², right (V_k)")
    bottom.set_ylim(-0.02, 1.02)
    bottom.set_ylabel("top-k subspace overlap")
    bottom.set_xticks(list(xs), labels, rotation=60, ha="right", fontsize=7)
    bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    bottom.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def write_outputs(out_dir: str | Path, rows: Mapping[str, dict], meta: Mapping[str, object]) -> dict[str, Path]:
    """Write drift.tsv, drift.json and drift.png into ``out_dir``: temporary names, renamed when all are done."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    final = {"tsv": out / "drift.tsv", "json": out / "drift.json", "png": out / "drift.png"}
    order = ("tsv", "png", "json")  # drift.json last: it marks the set complete
    with atomic_paths(*(final[key] for key in order)) as paths:
        temps = dict(zip(order, paths))
        temps["tsv"].write_text(tsv_text(rows), encoding="utf-8")
        doc = {"format": DRIFT_FORMAT, **meta, "summary": summarise(rows), "matrices": dict(rows)}
        temps["json"].write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        plot_drift(rows, temps["png"], title=f"{meta.get('system', '')}  ({meta.get('method', '')}, k = {meta.get('top_k', '')})")
    return final


def read_drift(path: str | Path) -> dict:
    """Read a drift.json; InputError naming the file when it is missing or of another format."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "missing (run the drift stage of this system first)") from None
    except (OSError, ValueError) as err:
        raise InputError(path, f"not a drift file ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != DRIFT_FORMAT or not isinstance(doc.get("matrices"), dict):
        raise InputError(path, f"not a {DRIFT_FORMAT} file")
    return doc


# -- command line ---------------------------------------------------------------------------

EXAMPLE = """\
spectral-drift --factors exp/svd/builtin/k64_b0/factors.pt \\
    exp/builtin_lora_r6_s1_0123abcd/final.pt exp/pretrain/builtin/final.pt exp/builtin_lora_r6_s1_0123abcd/drift
spectral-drift --top-k 256 exp/SYSTEM/final.pt /models/wavlm-large exp/SYSTEM/drift
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spectral-drift``."""
    p = command_parser("spectral-drift", "Measure, per adapted matrix, where a fine-tuned system's update went against the "
                       "pre-trained top-k singular subspaces (principal angles, shares of ||ΔW||², singular-value change, "
                       "rank of ΔW); writes drift.tsv, drift.json and drift.png into OUT_DIR.", EXAMPLE)
    p.add_argument("finetuned", help="the system's final.pt (finetune stage)")
    p.add_argument("pretrained", help="the pre-trained backbone: the pretrain stage's final.pt (builtin) or the "
                   "transformers directory (wavlm/hubert)")
    p.add_argument("out_dir", help="output directory (created); receives drift.tsv, drift.json, drift.png")
    p.add_argument("--top-k", type=int, default=None,
                   help="k; default: the system's adapter.top_k (spectralft, spectralft_rot), else --default-top-k")
    p.add_argument("--default-top-k", type=int, default=None,
                   help="k of systems without a top_k (default: 64 for builtin, 256 for wavlm/hubert)")
    p.add_argument("--factors", default=None,
                   help="the svd stage's factors.pt of the pre-trained backbone (spares decomposing W again)")
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0 keeps torch's default (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def choose_top_k(info: Mapping, top_k: int | None, default_top_k: int | None) -> int:
    """k of a system: ``top_k`` if given, else its adapter's top_k, else the default of its backbone kind."""
    if top_k is not None:
        return top_k
    if info.get("adapter_top_k"):
        return int(info["adapter_top_k"])
    return default_top_k if default_top_k is not None else DEFAULT_TOP_K[info["backbone"]]


def drift(args: argparse.Namespace) -> dict[str, Path]:
    """Run the stage for parsed arguments; return the written paths."""
    for opt in ("top_k", "default_top_k"):
        value = getattr(args, opt)
        if value is not None and value < 1:
            raise InputError(f"--{opt.replace('_', '-')}", f"must be >= 1, got {value}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    weights, new_weights, info = load_system(args.finetuned, args.pretrained)
    k = choose_top_k(info, args.top_k, args.default_top_k)
    factors = None
    if args.factors:
        from spectral.svd import SvdError, load_factors

        try:
            factors = load_factors(args.factors)
        except SvdError as err:
            raise InputError(args.factors, str(err).split(": ", 1)[-1]) from None
    log.info("%s: %s, %d matrices (e.g. %s), k = %d", args.finetuned, info["method"], len(weights), next(iter(weights)), k)
    try:
        rows = drift_of_weights(weights, new_weights, k, targets=info["targets"], factors=factors,
                                progress=not args.no_progress)
    except ValueError as err:
        raise InputError(args.finetuned, str(err)) from None
    meta = {**info, "top_k": k, "finetuned": str(args.finetuned), "pretrained": str(args.pretrained),
            "factors": str(args.factors) if args.factors else None}
    paths = write_outputs(args.out_dir, rows, meta)
    s = summarise(rows)
    log.info("%d matrices in %.1f s; %d updated; mean share outside the top-%d space %.3f, mean cos² left %.3f; wrote %s",
             len(rows), time.perf_counter() - start, s["updated"], k, s["share_outside"], s["cos2_mean_left"],
             ", ".join(str(p) for p in paths.values()))
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``spectral-drift``; returns the exit status (0 done, 1 bad input)."""
    args = build_parser().parse_args(argv)
    log_invocation("spectral-drift", args)
    return run_main("spectral-drift", lambda: drift(args))


if __name__ == "__main__":
    sys.exit(main())
