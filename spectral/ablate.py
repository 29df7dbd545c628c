"""Stage ablate: how much of a fine-tuned system's result its adapted matrices carry.

Writes a copy of a system's ``final.pt`` in which every adapted matrix (the weight and bias of
every module whose name ends in one of the adapter's ``targets``, e.g. ``q_proj`` and ``k_proj``
of every layer) is replaced; everything else (the other backbone weights, the back-end) is the
system's own:

``zero``
    weight and bias set to 0. With q and k both zero every attention score is 0, so each
    attention layer averages its values uniformly: the layers still run, but attend to nothing
    in particular. The cost in EER is the leverage those matrices have on the result.
``revert``
    weight and bias of the pre-trained backbone (``--pretrained``, the pretrain stage's
    ``final.pt``): the fine-tuning of those matrices undone, everything else kept. The cost is
    what the adaptation of those matrices contributed.

The workflow embeds and scores the ablated model with its own embed, score and metrics rules
(``exp/<system>/ablate/<mode>/``) and compares it with the system through ``spectral-compare``'s
paired speaker bootstrap (``exp/<system>/ablate/<mode>/comparison.md``); target
``results/ablation.md`` does both modes for the configured system.

The written checkpoint keeps the system's config, speakers and training-data record (so
embed and score accept it for the configured training set), drops the adapter factors (it is
not that system's adapter any more) and records ``ablation`` = {mode, source, matrices}.
``train_log.tsv`` is copied beside it (the comparison table reads the trainable-parameter
count and training time of the system it came from). Library call: :func:`ablate_checkpoint`.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from spectral.atomic import atomic_path
from spectral.errors import InputError
from spectral.logutil import log_invocation, run_main

log = logging.getLogger("spectral-ablate")

MODES = ("zero", "revert")


def _backbone_prefix(state: dict) -> str:
    """'backbone.' plus 'model.' for an SSL backbone (its transformers model sits under .model)."""
    return "backbone.model." if any(k.startswith("backbone.model.") for k in state) else "backbone."


def ablated_keys(state: dict, targets: Sequence[str]) -> list[str]:
    """Backbone weight and bias keys of every module whose last name is one of ``targets``."""
    prefix = _backbone_prefix(state)
    keys = []
    for key in state:
        if not key.startswith(prefix):
            continue
        module, _, leaf = key.rpartition(".")
        if leaf in ("weight", "bias") and module.rpartition(".")[2] in targets:
            keys.append(key)
    return keys


def ablate_state(state: dict, keys: Sequence[str], mode: str, pretrained: dict | None = None) -> dict:
    """A copy of ``state`` with ``keys`` zeroed (``zero``) or taken from ``pretrained`` (``revert``).

    ``pretrained`` is a backbone state dict, keyed without the ``backbone.`` prefix (the
    pre-trained backbone's own ``state_dict()``)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    out = dict(state)
    for key in keys:
        if mode == "zero":
            out[key] = state[key].new_zeros(state[key].shape)
        else:
            source = pretrained.get(key[len("backbone."):]) if pretrained is not None else None
            if source is None or source.shape != state[key].shape:
                raise ValueError(f"the pre-trained backbone has no {key[len('backbone.'):]} of shape "
                                 f"{tuple(state[key].shape)}")
            out[key] = source.to(state[key].dtype).clone()
    return out


def ablate_checkpoint(checkpoint: str | Path, out_dir: str | Path, mode: str,
                      pretrained: str | Path | None = None, targets: Sequence[str] | None = None) -> Path:
    """Write ``out_dir/final.pt`` (and ``train_log.tsv``): ``checkpoint`` with its adapted matrices ablated.

    ``targets``: module names to ablate (default: the system's ``adapter.targets``). ``revert``
    needs ``pretrained``, the pretrain stage's ``final.pt`` of a builtin backbone. Returns the path."""
    import torch

    from spectral.models.speaker import load_pretrained_builtin, read_checkpoint

    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    if mode not in MODES:
        raise InputError("--mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
    ckpt = read_checkpoint(checkpoint)
    targets = list(targets or ckpt["config"].get("adapter", {}).get("targets") or [])
    if not targets:
        raise InputError(checkpoint, "records no adapter targets; name the matrices with --targets")
    keys = ablated_keys(ckpt["model"], targets)
    if not keys:
        raise InputError(checkpoint, f"has no backbone module named {', '.join(targets)}")
    reference = None
    if mode == "revert":
        if pretrained is None:
            raise InputError("--pretrained", "is needed by --mode revert (the pretrain stage's final.pt)")
        if ckpt["config"]["model"]["backbone"] != "builtin":
            raise InputError(checkpoint, "--mode revert reads a pretrain stage's final.pt: builtin backbones only")
        reference = load_pretrained_builtin(pretrained)[0].state_dict()
    try:
        state = ablate_state(ckpt["model"], keys, mode, reference)
    except ValueError as err:
        raise InputError(pretrained or checkpoint, str(err)) from None
    out = {k: v for k, v in ckpt.items() if k not in ("model", "adapters")}
    out["model"] = state
    out["ablation"] = {"mode": mode, "source": str(checkpoint), "pretrained": str(pretrained) if pretrained else None,
                       "matrices": sorted({k.rpartition(".")[0] for k in keys})}
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "final.pt") as tmp:
        torch.save(out, tmp)
    log_tsv = checkpoint.parent / "train_log.tsv"
    if log_tsv.is_file():
        with atomic_path(out_dir / "train_log.tsv") as tmp:
            shutil.copyfile(log_tsv, tmp)
    log.info("%s: %d matrices (%d tensors) set to %s -> %s", checkpoint, len(out["ablation"]["matrices"]), len(keys),
             "zero" if mode == "zero" else "the pre-trained weights", out_dir / "final.pt")
    return out_dir / "final.pt"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spectral-ablate",
        description="Stage *ablate*: a system's final.pt with its adapted matrices zeroed or reverted to the "
                    "pre-trained ones, for embedding and scoring against the system (how much they carry).",
        epilog="example:\n  spectral-ablate --mode revert --pretrained exp/pretrain/builtin/final.pt "
               "exp/SYSTEM/final.pt exp/SYSTEM/ablate/revert\n"
               "  (the workflow does this and the scoring: snakemake --cores 2 results/ablation.md)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", help="final.pt of a finetune stage")
    p.add_argument("out_dir", help="where the ablated final.pt (and a copy of train_log.tsv) go")
    p.add_argument("--mode", choices=MODES, required=True,
                   help="zero: weight and bias 0; revert: those of the pre-trained backbone")
    p.add_argument("--pretrained", help="the pretrain stage's final.pt (needed by --mode revert)")
    p.add_argument("--targets", nargs="+", help="module names to ablate (default: the system's adapter.targets)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``spectral-ablate``; returns the exit status (0 done, 1 bad input)."""
    args = build_parser().parse_args(argv)
    log_invocation("spectral-ablate", args)
    return run_main("spectral-ablate",
                    lambda: ablate_checkpoint(args.checkpoint, args.out_dir, args.mode, args.pretrained, args.targets))


if __name__ == "__main__":
    sys.exit(main())
