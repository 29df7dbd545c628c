"""Stage *export*: take a trained system out of the pipeline, into ``exp/<system>/export/``.

Reads ``exp/<system>/final.pt`` and, for the peft adapter, the pre-trained backbone and the
svd stage's factors.pt the system was fine-tuned from. Writes::

    hf/                  WavLM/HuBERT with the adapters merged (transformers save_pretrained)
    backend.safetensors  layer weights + ECAPA-TDNN, and backend.json (its shape, how to apply it)
    extractor.onnx       stage input -> L2-normalised embedding, for onnxruntime
    extractor.pt         the same in TorchScript (torch.jit.load)
    peft/                adapter_config.json + adapter_model.safetensors (peft LoRA), for
                         methods whose update is exactly low-rank (lora, pissa, milora, spectralft)
    export.json          what was written, or why an item was not (e.g. peft/ of dora)

The directory is built under a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
from pathlib import Path
from typing import Any

from spectral.atomic import atomic_dir
from spectral.errors import InputError
from spectral.logutil import command_parser, log_invocation, run_main

log = logging.getLogger("spectral.export")

#: What the stage can write; ``--what`` picks a subset.
ITEMS: tuple[str, ...] = ("hf", "backend", "extractor", "peft")


def _needed(what: tuple[str, ...]) -> list[str]:
    """The optional packages (the ``export`` extra) the items of ``what`` need."""
    needed = []
    if {"backend", "peft"} & set(what):
        needed.append("safetensors")
    if "extractor" in what:
        needed.append("onnx")
    return needed


def export_system(checkpoint: str | Path, out_dir: str | Path, backbone_checkpoint: str | Path | None = None,
                  pretrained_dir: str | Path | None = None, factors: str | Path | None = None,
                  what: tuple[str, ...] = ITEMS, peft: str = "auto", threads: int = 1) -> dict[str, Any]:
    """Export the system of ``checkpoint`` into ``out_dir``; return the manifest (also written as export.json).

    ``peft``: "auto" writes peft/ where the method allows it and records why not otherwise;
    "require" makes a method without a low-rank form an error; "skip" leaves peft/ out.
    ``hf`` is skipped (with a note) for the builtin backbone.
    """
    import torch

    from spectral.export.extractor import export_extractor
    from spectral.export.hf import export_backend, export_hf
    from spectral.export.peft_format import NoLowRankForm, export_peft
    from spectral.models.speaker import ModelConfig, load_model_checkpoint

    missing = [m for m in _needed(what) if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError("spectral-export", f"needs the package(s) {', '.join(missing)}: pip install -e '.[export]' "
                                            "(./setup.sh --test installs them too)")
    torch.set_num_threads(threads)
    unknown = sorted(set(what) - set(ITEMS))
    if unknown:
        raise ValueError(f"unknown export item(s) {unknown}; expected some of {', '.join(ITEMS)}")
    model, ckpt = load_model_checkpoint(checkpoint)
    model_cfg = ModelConfig.from_dict(ckpt["config"]["model"])
    kind = model_cfg.input_kind
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:  # beside the old one, swapped in when complete
        adapter = ckpt["config"].get("adapter") or {}
        manifest: dict[str, Any] = {"system": ckpt.get("system"), "checkpoint": str(checkpoint),
                                    "backbone": model_cfg.backbone, "method": adapter.get("method"),
                                    "input_kind": kind, "written": [], "not_written": {}}
        if "hf" in what:
            if model_cfg.backbone == "builtin":
                manifest["not_written"]["hf"] = "the builtin backbone has no transformers form; use extractor.* or peft/"
            else:
                export_hf(model, tmp / "hf")
                manifest["written"].append("hf/")
        if "backend" in what:
            export_backend(model, kind, ckpt["config"]["backend"], tmp)
            manifest["written"] += ["backend.safetensors", "backend.json"]
        if "extractor" in what:
            n_mels = model_cfg.builtin.n_mels
            export_extractor(model, kind, tmp, n_mels=n_mels)
            manifest["written"] += ["extractor.pt", "extractor.onnx"]
            manifest["extractor_input"] = ({"name": "feats", "shape": ["batch", "frames", n_mels], "what": "fbank as in feats.scp"}
                                           if kind == "fbank" else
                                           {"name": "wave", "shape": ["batch", "samples"], "what": "16 kHz float waveform"})
        if "peft" in what and peft != "skip":
            try:
                export_peft(ckpt, tmp / "peft", backbone_checkpoint, pretrained_dir, factors)
                manifest["written"].append("peft/")
            except NoLowRankForm as err:
                if peft == "require":
                    raise InputError(checkpoint, str(err)) from None
                log.warning("%s", err)
                manifest["not_written"]["peft"] = str(err)
        (tmp / "export.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("wrote %s: %s", out_dir, ", ".join(manifest["written"]))
    return manifest


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("spectral-export", __doc__.split("\n\n")[0], """\
spectral-export --backbone-checkpoint exp/pretrain/builtin/final.pt \\
    --factors exp/svd/builtin/k4_b0/factors.pt exp/SYSTEM/final.pt exp/SYSTEM/export
spectral-export --factors exp/svd/wavlm_large/k256_b0/factors.pt exp/SYSTEM/final.pt exp/SYSTEM/export
    (wavlm/hubert: the pre-trained directory is model.path from the checkpoint, or --pretrained-dir)
""")
    p.add_argument("checkpoint", help="final.pt of the finetune stage")
    p.add_argument("out_dir", help="the export directory (replaced when complete)")
    p.add_argument("--backbone-checkpoint",
                   help="builtin: the pretrain stage's final.pt the system was fine-tuned from (for peft/)")
    p.add_argument("--pretrained-dir",
                   help="wavlm/hubert: the pre-trained transformers directory (default: model.path in the checkpoint)")
    p.add_argument("--factors",
                   help="the svd stage's factors.pt the finetune stage read (spectralft, pissa, milora; for peft/)")
    p.add_argument("--what", default=",".join(ITEMS),
                   help="comma-separated subset of %s (default: all)" % ",".join(ITEMS))
    p.add_argument("--peft", choices=("auto", "require", "skip"), default="auto",
                   help="auto: write peft/ where the method is exactly low-rank, else record why not in export.json; "
                        "require: that is an error; skip: leave peft/ out (default %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spectral-export``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    what = tuple(w for w in args.what.split(",") if w)
    bad = sorted(set(what) - set(ITEMS))
    if bad or not what:
        parser.error(f"--what takes a comma-separated subset of {','.join(ITEMS)}, got {args.what!r}")
    log_invocation("spectral-export", args)
    return run_main(
        "spectral-export",
        lambda: export_system(args.checkpoint, args.out_dir, args.backbone_checkpoint, args.pretrained_dir,
                              args.factors, what, args.peft, args.threads),
    )


if __name__ == "__main__":
    sys.exit(main())
