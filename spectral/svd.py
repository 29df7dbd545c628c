"""Stage svd: decompose every target weight matrix of a pre-trained checkpoint.

Reads a checkpoint, either

* our own ``final.pt`` (pretrain/finetune stages): a dict saved with ``torch.save`` holding at
  least ``{"model": state_dict, "config": {...}}``, loaded with ``weights_only=True``; the
  target matrices are the 2-D ``<name>.weight`` tensors whose ``<name>`` the target patterns
  select; or
* a Hugging Face ``transformers`` model directory (WavLM, HuBERT, ...; ``config.json`` plus
  weights), loaded offline from the local path with ``AutoModel``; the targets are its
  ``nn.Linear`` modules the patterns select,

and writes into the output directory, each atomically (temporary name, then rename):

``factors.pt``    ``{"format": "spectral-factors/1", "source", "method", "top_k", "bottom",
                  "factors": {module name: {"U", "S", "Vh"[, "U_bottom", "Vh_bottom"]}}}``
                  (the factor dict of :mod:`spectral.adapters.decompose`); read it back with
                  :func:`load_factors`, which uses ``weights_only=True``.
``spectra.json``  per matrix: shape, singular values, energy captured by the top k, effective
                  rank (entropy of the normalised spectrum, Roy & Vetterli 2007; null for
                  lowrank), stable rank, relative reconstruction error of the rank-k part.
``spectra.png``   singular-value curves per layer, one panel per matrix kind, k marked.

For our builtin backbone's ``final.pt`` (the pretrain stage's) ``spectra.json`` also holds
``pretraining_drift``: how far pre-training moved the spectrum, i.e. the drift measures of
:mod:`spectral.drift` with W the initialisation (re-created from the seed the checkpoint
records, :func:`spectral.models.builtin.initial_backbone`) and W' the pre-trained weight,
per matrix (mean cos² overlap of the top-k left/right subspaces, shares of ||ΔW||², ...) and
their means. It is null for transformers directories and foreign checkpoints (no seed).

The finetune stage passes the factors to :func:`spectral.adapters.apply_adapters`, so it does
not decompose again. Command line: ``spectral-svd`` (see ``--help``); shell stage:
``steps/svd.sh``.
"""

from __future__ import annotations

import argparse
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

from spectral.adapters.config import matches_target
from spectral.adapters.decompose import SVD_METHODS, decompose
from spectral.atomic import atomic_paths
from spectral.errors import InputError
from spectral.logutil import command_parser, log_command, run_main

log = logging.getLogger("spectral.svd")

FACTORS_FORMAT = "spectral-factors/1"
DTYPES = {"float32": torch.float32, "float64": torch.float64}


#: Bad input to the svd stage: the one error type of every stage, under its old name.
SvdError = InputError


# -- reading checkpoints -------------------------------------------------------------------


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix) :] if prefix and name.startswith(prefix) else name


def load_target_weights(
    checkpoint: str | Path, targets: Sequence[str], strip_prefix: str = ""
) -> dict[str, Tensor]:
    """The target weight matrices of ``checkpoint``, keyed by module name, in checkpoint order.

    ``checkpoint`` is a ``final.pt`` file or a transformers model directory (module
    docstring). ``strip_prefix`` is removed from the front of every name first (e.g.
    ``"backbone."``), so the keys match the module names of the model the adapters go into.
    Raises SvdError naming the file when it is missing, unreadable or malformed, or when no
    matrix matches ``targets``.
    """
    path = Path(checkpoint)
    if not path.exists():
        raise SvdError(f"{path}: no such checkpoint file or model directory")
    if path.is_dir():
        weights = _hf_weights(path, targets, strip_prefix)
    else:
        weights = _final_pt_weights(path, targets, strip_prefix)
    if not weights:
        raise SvdError(f"{path}: no weight matrix matches the target patterns {list(targets)}")
    return weights


def _final_pt_weights(path: Path, targets: Sequence[str], strip_prefix: str) -> dict[str, Tensor]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise SvdError(f"{path}: cannot read the checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(ckpt, Mapping) or "model" not in ckpt or "config" not in ckpt:
        keys = sorted(ckpt) if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise SvdError(f"{path}: not a final.pt checkpoint (expected a dict with 'model' and 'config', got {keys})")
    state = ckpt["model"]
    if not isinstance(state, Mapping):
        raise SvdError(f"{path}: 'model' is a {type(state).__name__}, expected a state dict")
    weights: dict[str, Tensor] = {}
    for key, value in state.items():
        if not (isinstance(key, str) and key.endswith(".weight") and isinstance(value, Tensor)):
            continue
        name = _strip(key[: -len(".weight")], strip_prefix)
        if value.dim() == 2 and matches_target(name, targets):
            weights[name] = value
    return weights


def _hf_weights(path: Path, targets: Sequence[str], strip_prefix: str) -> dict[str, Tensor]:
    if not (path / "config.json").is_file():
        raise SvdError(f"{path}: a model directory needs config.json (transformers save_pretrained layout)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from transformers import AutoModel
    except ImportError:
        raise SvdError(f"{path}: reading a model directory needs the 'transformers' package (pip install .[ssl])") from None
    try:
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
    except Exception as err:
        raise SvdError(f"{path}: cannot load the transformers model ({type(err).__name__}: {err})") from None
    weights = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            short = _strip(name, strip_prefix)
            if matches_target(short, targets):
                weights[short] = module.weight.detach()
    return weights


# -- decomposing and describing -------------------------------------------------------------


def spectrum_stats(weight: Tensor, factors: Mapping[str, Tensor], top_k: int, full_spectrum: bool) -> dict:
    """Description of one matrix's spectrum for ``spectra.json``.

    Takes the weight, its factor dict, k and whether ``factors["S"]`` is the whole spectrum;
    returns shape, singular values, energy captured by the top k (fraction of ||W||_F^2),
    effective rank (null unless the whole spectrum is known), stable rank
    ||W||_F^2 / s_1^2, and ||W - U_k S_k V_k^T||_F / ||W||_F.
    """
    w = weight.detach().to(torch.float64)
    total = float(w.pow(2).sum())
    s = factors["S"].to(torch.float64)
    top = s[:top_k]
    approx = (factors["U"][:, :top_k].to(w) * top) @ factors["Vh"][:top_k].to(w)
    error = float((w - approx).norm()) / math.sqrt(total) if total > 0 else 0.0
    effective = None
    if full_spectrum and float(s.sum()) > 0:
        p = s / s.sum()
        p = p[p > 0]
        effective = float(torch.exp(-(p * p.log()).sum()))
    return {
        "shape": list(w.shape),
        "singular_values": s.tolist(),
        "energy_top_k": float(top.pow(2).sum()) / total if total > 0 else 0.0,
        "effective_rank": effective,
        "stable_rank": total / float(s[0]) ** 2 if float(s[0]) > 0 else 0.0,
        "reconstruction_error": error,
    }


def decompose_weights(
    weights: Mapping[str, Tensor],
    top_k: int,
    *,
    bottom: int = 0,
    method: str = "full",
    oversample: int = 10,
    niter: int = 4,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
) -> tuple[dict[str, dict[str, Tensor]], dict[str, dict]]:
    """Decompose every matrix of ``weights`` (float64 arithmetic); return (factors, stats).

    ``factors`` maps each name to its factor dict cast to ``dtype``; ``stats`` maps it to
    :func:`spectrum_stats`. ``method``, ``oversample``, ``niter`` and ``seed`` are those of
    :func:`spectral.adapters.decompose.decompose`. Raises SvdError naming the matrix when k
    or ``bottom`` do not fit it.
    """
    factors: dict[str, dict[str, Tensor]] = {}
    stats: dict[str, dict] = {}
    for name, weight in tqdm(weights.items(), desc=f"svd ({method})", unit="matrix", disable=not progress):
        m, n = weight.shape
        if top_k > min(m, n) or bottom > min(m, n):
            raise SvdError(
                f"{name} ({m}x{n}): --top-k {top_k} / --bottom {bottom} exceed its min(m, n) = {min(m, n)}"
            )
        f = decompose(weight, top_k, bottom=bottom, method=method, oversample=oversample, niter=niter, seed=seed)
        stats[name] = spectrum_stats(weight, f, top_k, full_spectrum=(method != "lowrank"))
        factors[name] = {key: value.to(dtype).contiguous() for key, value in f.items()}
    return factors, stats


# -- what pre-training changed ---------------------------------------------------------------


def pretraining_drift(
    checkpoint: str | Path, weights: Mapping[str, Tensor], top_k: int, strip_prefix: str = ""
) -> dict | None:
    """Drift (:mod:`spectral.drift`) from the builtin backbone's initialisation to ``weights``.

    ``checkpoint`` is the pretrain stage's ``final.pt`` the ``weights`` (keyed as
    :func:`load_target_weights` keys them) came from; the initialisation is re-created with
    :func:`spectral.models.builtin.initial_backbone` from the seed it records (``init.seed``,
    else ``config.train.seed``), without disturbing the global random state. Returns
    ``{"seed", "torch", "top_k", "summary", "matrices"}``, or None when the checkpoint is a
    directory, not a builtin backbone's, or records no seed.
    """
    from spectral.drift import drift_of_weights, summarise
    from spectral.models.builtin import BuiltinConfig, initial_backbone

    path = Path(checkpoint)
    if path.is_dir():
        return None
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    config = ckpt.get("config") if isinstance(ckpt, Mapping) else None
    model = config.get("model") if isinstance(config, Mapping) else None
    if not isinstance(model, Mapping) or model.get("backbone") != "builtin" or not isinstance(model.get("builtin"), Mapping):
        return None
    init = ckpt.get("init") if isinstance(ckpt.get("init"), Mapping) else {}
    train = config.get("train") if isinstance(config.get("train"), Mapping) else {}
    seed = init.get("seed", train.get("seed"))
    if not isinstance(seed, int):
        return None
    if init.get("torch") and init["torch"] != str(torch.__version__):
        log.warning("%s was pre-trained with torch %s, this is %s: the re-created initialisation may differ",
                    path, init["torch"], torch.__version__)
    with torch.random.fork_rng(devices=[]):
        backbone = initial_backbone(BuiltinConfig.from_dict(dict(model["builtin"])), seed)
    initial = {}
    for key, value in backbone.state_dict().items():
        if key.endswith(".weight"):
            name = _strip(f"backbone.{key[: -len('.weight')]}", strip_prefix)
            if name in weights:
                initial[name] = value
    if not initial:
        return None
    rows = drift_of_weights(initial, {name: weights[name] for name in initial}, top_k, targets=[".*"])
    return {"seed": seed, "torch": init.get("torch"), "top_k": top_k, "summary": summarise(rows), "matrices": rows}


# -- writing --------------------------------------------------------------------------------


def _layer_and_kind(name: str) -> tuple[int | None, str]:
    numbers = re.findall(r"(?:^|\.)(\d+)(?:\.|$)", name)
    return (int(numbers[0]) if numbers else None), name.rsplit(".", 1)[-1]


def plot_spectra(stats: Mapping[str, dict], top_k: int, path: str | Path, title: str = "") -> None:
    """Write a png of the singular-value curves: one panel per matrix kind, a line per layer, k marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds: dict[str, list[tuple[int | None, str]]] = {}
    for name in stats:
        layer, kind = _layer_and_kind(name)
        kinds.setdefault(kind, []).append((layer, name))
    cols = min(len(kinds), 3)
    rows = math.ceil(len(kinds) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, (kind, members) in zip(axes.flat, sorted(kinds.items())):
        layers = [layer for layer, _ in members if layer is not None]
        top_layer = max(layers) if layers else 0
        for layer, name in members:
            values = stats[name]["singular_values"]
            colour = cmap(layer / max(top_layer, 1)) if layer is not None else "black"
            label = f"layer {layer}" if layer is not None else name
            ax.semilogy(range(1, len(values) + 1), values, color=colour, linewidth=0.9, label=label)
        ax.axvline(top_k, color="red", linestyle="--", linewidth=1.0, label=f"k = {top_k}")
        ax.set_title(kind)
        ax.set_xlabel("index i")
        ax.set_ylabel("singular value s_i")
        handles, labels = ax.get_legend_handles_labels()
        if len(members) <= 8:
            ax.legend(fontsize=7)
        else:
            ax.legend([handles[0], handles[-2], handles[-1]], [labels[0], labels[-2], labels[-1]], fontsize=7)
    for ax in list(axes.flat)[len(kinds) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def write_outputs(
    out_dir: str | Path,
    factors: Mapping[str, Mapping[str, Tensor]],
    stats: Mapping[str, dict],
    meta: Mapping[str, object],
    report: Mapping[str, object] | None = None,
) -> dict[str, Path]:
    """Write factors.pt, spectra.json and spectra.png into ``out_dir`` atomically.

    All three are written under temporary names first and renamed only when all are
    complete. ``meta`` (source, method, top_k, bottom, ...) goes into factors.pt and
    spectra.json, ``report`` (e.g. ``pretraining_drift``) into spectra.json only. Returns the
    final paths by kind.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    final = {"factors": out / "factors.pt", "spectra": out / "spectra.json", "plot": out / "spectra.png"}
    order = ("spectra", "plot", "factors")  # factors.pt last: it marks the set complete
    with atomic_paths(*(final[key] for key in order)) as paths:
        temps = dict(zip(order, paths))
        torch.save({"format": FACTORS_FORMAT, **meta, "factors": {k: dict(v) for k, v in factors.items()}}, temps["factors"])
        with open(temps["spectra"], "w", encoding="utf-8") as fh:
            json.dump({**meta, **dict(report or {}), "matrices": dict(stats)}, fh, indent=1)
            fh.write("\n")
        title = f"{meta.get('source', '')}  ({meta.get('method', '')} SVD)"
        plot_spectra(stats, int(meta["top_k"]), temps["plot"], title=title)
    return final


def factors_by_module(factors: dict, names: list[str], source: str) -> dict:
    """``factors`` (of :func:`load_factors`) keyed by the adapted model's module ``names``.

    The svd stage may have written them under a prefix (``backbone.``): a name matches the one
    key equal to it or ending in ``"." + name``. Raises InputError naming ``source`` when a
    module has no factors or several."""
    out = {}
    for name in names:
        if name in factors:
            out[name] = factors[name]
            continue
        hits = [k for k in factors if k.endswith("." + name)]
        if len(hits) != 1:
            raise InputError(source, f"holds {'no' if not hits else 'several'} factors for module {name!r} "
                                     f"(it holds e.g. {next(iter(factors), '(none)')!r}); rerun the svd stage with the same targets")
        out[name] = factors[hits[0]]
    return out


def load_factors(path: str | Path) -> dict[str, dict[str, Tensor]]:
    """Read ``factors.pt`` (``weights_only=True``); return its module name -> factor dict map.

    Raises SvdError naming the file when it is missing, unreadable or of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise SvdError(f"{path}: no such factors file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise SvdError(f"{path}: cannot read the factors ({type(err).__name__}: {err})") from None
    if not isinstance(data, Mapping) or data.get("format") != FACTORS_FORMAT or not isinstance(data.get("factors"), Mapping):
        raise SvdError(f"{path}: not a {FACTORS_FORMAT} factors file")
    return {name: dict(entry) for name, entry in data["factors"].items()}


# -- command line ---------------------------------------------------------------------------

EXAMPLE = """\
spectral-svd --targets 'q_proj k_proj' --top-k 64 exp/pretrain/builtin/final.pt exp/svd/builtin/k64_b0
spectral-svd --method lowrank --niter 4 --top-k 256 /models/wavlm-large exp/svd/wavlm-large/k256_b0
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spectral-svd``."""
    parser = command_parser("spectral-svd", "Decompose every target weight matrix of a checkpoint (our final.pt, or a "
                            "transformers model directory loaded offline) and write factors.pt, spectra.json "
                            "and spectra.png into OUT_DIR.", EXAMPLE)
    parser.add_argument("checkpoint", help="final.pt file, or a transformers model directory (config.json + weights)")
    parser.add_argument("out_dir", help="output directory (created); receives factors.pt, spectra.json, spectra.png")
    parser.add_argument(
        "--targets", default="q_proj k_proj", metavar="'PATTERN ...'",
        help="space-separated module-name patterns of the matrices to decompose: name suffixes "
        "or regular expressions (default: 'q_proj k_proj')",
    )
    parser.add_argument("--top-k", type=int, default=64,
                        help="leading singular triplets stored per matrix, k (default: 64, the schema's adapter.top_k)")
    parser.add_argument(
        "--bottom", type=int, default=0,
        help="trailing singular triplets also stored (for milora; needs --method full) (default: 0)",
    )
    parser.add_argument(
        "--method", choices=SVD_METHODS, default="full",
        help="full: complete LAPACK SVD in float64; gram: exact float64 eigendecomposition of the "
        "Gram matrix, about 2x faster, no --bottom; lowrank: randomised SVD (default: full)",
    )
    parser.add_argument("--oversample", type=int, default=10, help="lowrank: extra random columns beyond k (default: 10)")
    parser.add_argument("--niter", type=int, default=4, help="lowrank: power (subspace) iterations (default: 4)")
    parser.add_argument("--seed", type=int, default=0, help="lowrank: seed of the random projection (default: 0)")
    parser.add_argument(
        "--dtype", choices=sorted(DTYPES), default="float32",
        help="dtype the factors are stored in; arithmetic is always float64 (default: float32)",
    )
    parser.add_argument(
        "--strip-prefix", default="",
        help="prefix removed from every module name, so names match the model the adapters go into (e.g. 'backbone.')",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 keeps torch's default (default: 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``spectral-svd``; returns the exit status (0 done, 1 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    log_command("spectral-svd", None if argv is None else list(argv))
    log.info("arguments: %s", json.dumps(vars(args), sort_keys=True))
    if args.top_k < 1:
        parser.error(f"--top-k must be >= 1, got {args.top_k}")
    if args.bottom < 0:
        parser.error(f"--bottom must be >= 0, got {args.bottom}")
    if args.bottom and args.method != "full":
        parser.error(f"--bottom needs --method full (the {args.method} method finds only the top triplets)")
    if args.oversample < 0 or args.niter < 0:
        parser.error(f"--oversample and --niter must be >= 0, got {args.oversample} and {args.niter}")
    targets = args.targets.split()
    if not targets:
        parser.error("--targets is empty")
    for pattern in targets:
        try:
            re.compile(pattern)
        except re.error as err:
            parser.error(f"--targets pattern {pattern!r} is not a valid regular expression: {err}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    return run_main("spectral-svd", lambda: _run(args, targets))


def _run(args: argparse.Namespace, targets: list[str]) -> None:
    """The work of ``spectral-svd`` once its arguments are checked."""
    start = time.perf_counter()
    weights = load_target_weights(args.checkpoint, targets, args.strip_prefix)
    log.info("%s: %d target matrices, e.g. %s", args.checkpoint, len(weights), next(iter(weights)))
    factors, stats = decompose_weights(
        weights,
        args.top_k,
        bottom=args.bottom,
        method=args.method,
        oversample=args.oversample,
        niter=args.niter,
        seed=args.seed,
        dtype=DTYPES[args.dtype],
    )
    meta = {
        "source": str(args.checkpoint),
        "method": args.method,
        "top_k": args.top_k,
        "bottom": args.bottom,
        "targets": targets,
        "dtype": args.dtype,
    }
    moved = pretraining_drift(args.checkpoint, weights, args.top_k, args.strip_prefix)
    if moved is not None:
        log.info("pre-training moved the top-%d subspaces of %d matrices from their seed-%d initialisation: "
                 "mean cos² overlap left %.3f, right %.3f", args.top_k, len(moved["matrices"]), moved["seed"],
                 moved["summary"]["cos2_mean_left"], moved["summary"]["cos2_mean_right"])
    paths = write_outputs(args.out_dir, factors, stats, meta, {"pretraining_drift": moved})
    energies = [s["energy_top_k"] for s in stats.values()]
    log.info(
        "decomposed %d matrices in %.1f s; energy in the top %d: min %.3f, mean %.3f; wrote %s",
        len(stats), time.perf_counter() - start, args.top_k, min(energies),
        sum(energies) / len(energies), ", ".join(str(p) for p in paths.values()),
    )


if __name__ == "__main__":
    sys.exit(main())
