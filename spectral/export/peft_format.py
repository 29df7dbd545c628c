"""Stage *export*: the trained adapters in Hugging Face peft's LoRA format (``peft/``).

Reads ``final.pt`` (its ``"adapters"`` tensors and adapter config), the pre-trained backbone
it was fine-tuned from (our pretrain ``final.pt`` for builtin, the transformers directory for
WavLM/HuBERT) and, for the SVD-based methods, the same ``factors.pt`` the finetune stage read.
Writes::

    peft/adapter_config.json        peft LoraConfig (peft_type LORA, lora_alpha = r: scale 1)
    peft/adapter_model.safetensors  base_model.model.<module>.lora_{A,B}.weight

so that ``PeftModel.from_pretrained(pretrained_backbone, "peft/").merge_and_unload()`` gives
the fine-tuned weights. Every method whose change of the pre-trained weight W is exactly
low-rank is written as W' = W + B A (peft's scale folded into B):

``lora``        B = s B_ours, A = A_ours (rank r).
``pissa``,      the adapter starts as s B0 A0 = the top (bottom) r triplets and the frozen
``milora``      weight is W - s B0 A0, so W' - W = s B A - s B0 A0 = [s B, -s B0] [A; A0]
                (rank 2r; peft converts its own PiSSA adapters the same way).
``spectralft``  W' = W_m + (U + s B_U A_U) S (V + s B_V A_V)^T with W = W_m + U S V^T, so
                W' - W = s B_U [A_U S V'^T] + [U S A_V^T] s B_V^T,  V' = V + s B_V A_V:
                B = [s B_U, U S A_V^T] (m x 2r), A = [A_U S V'^T; s B_V^T] (2r x n);
                the residual W_m is in W already and cancels (``keep_residual``; without it
                W' - W = -W_m + ..., which is full-rank).

``spectralft_rot``, ``dora``, ``full`` and ``frozen`` (and spectralft without the residual)
have no such form: :func:`check_low_rank` raises :class:`NoLowRankForm` saying why and what
to use instead (``hf/``, the extractor).

Where peft's LoRA does not act: transformers' WavLM attention hands ``q_proj.weight`` (etc.)
to ``F.multi_head_attention_forward`` instead of calling the module, so an *unmerged* peft
LoRA layer on q/k/v/out_proj is bypassed in the forward pass. Merge it
(``merge_and_unload()``) or load ``hf/`` instead. HuBERT and our builtin backbone call their
projections, so there the unmerged adapter acts too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from spectral.atomic import atomic_dir
from spectral.errors import InputError

log = logging.getLogger("spectral.export")

#: Methods whose update W' - W is exactly low-rank, and the rank of the peft form in units of r.
LOW_RANK_METHODS: dict[str, int] = {"lora": 1, "pissa": 2, "milora": 2, "spectralft": 2}

#: Why the other methods have no peft LoRA form, and what to use instead.
NO_LOW_RANK: dict[str, str] = {
    "spectralft_rot": "its update U_k (R_U S_k R_V^T - S_k) V_k^T rotates the whole top-k subspace: a dense k x k "
                      "core, not a rank-r (or rank-2r) product of its adapter tensors",
    "dora": "its update diag(g / ||W + sBA||) (W + sBA) - W rescales every row of W, a full-rank change",
    "full": "full fine-tuning changes every weight of the backbone; there is no adapter to write",
    "frozen": "nothing in the backbone was trained, so there is no adapter to write (the pre-trained backbone is the system's)",
}

INSTEAD = "load exp/<system>/export/hf/ (WavLM/HuBERT, adapters merged) or use extractor.onnx / extractor.pt"


class NoLowRankForm(ValueError):
    """The system's adapter method has no exact peft LoRA form; the message says why and what to use."""


def check_low_rank(adapter_cfg: Mapping[str, Any] | None) -> None:
    """Raise :class:`NoLowRankForm` unless ``adapter_cfg`` (an AdapterConfig dict) is exactly low-rank."""
    if not adapter_cfg:
        raise NoLowRankForm(f"peft/: the checkpoint holds no adapter (a pretrain final.pt?): {NO_LOW_RANK['frozen']}; {INSTEAD}")
    method = adapter_cfg.get("method")
    if method in NO_LOW_RANK:
        raise NoLowRankForm(f"peft/: method {method!r} has no exact low-rank (LoRA) form: {NO_LOW_RANK[method]}; {INSTEAD}")
    if method not in LOW_RANK_METHODS:
        raise NoLowRankForm(f"peft/: unknown adapter method {method!r}; {INSTEAD}")
    if method == "spectralft" and not adapter_cfg.get("keep_residual", True):
        raise NoLowRankForm("peft/: spectralft with keep_residual=false drops the residual W_m, so W' - W = -W_m + (rank 2r) "
                            f"is full-rank; {INSTEAD}")


def layer_delta(layer: nn.Module, initial: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """(B (m x q), A (q x n)) with B @ A = W' - W_pretrained for one trained adapter layer.

    ``initial`` is (B0, A0) of a pissa/milora layer as initialised (before training).
    """
    from spectral.adapters import LowRankLayer, SpectralFTLayer

    with torch.no_grad():
        if isinstance(layer, SpectralFTLayer):
            if not layer.keep_residual:
                raise NoLowRankForm("spectralft without the residual has no low-rank form")
            left, right = layer.delta_factors()
            return left.detach().clone(), right.detach().clone()
        if isinstance(layer, LowRankLayer):
            s = layer.scaling
            if layer.method == "lora":
                return (s * layer.B).clone(), layer.A.detach().clone()
            if initial is None:
                raise ValueError(f"{layer.method}: the initial adapter (B0, A0) is needed for the conversion")
            b0, a0 = initial
            return torch.cat([s * layer.B, -s * b0], dim=1), torch.cat([layer.A, a0], dim=0)
    raise NoLowRankForm(f"peft/: layer {type(layer).__name__} ({getattr(layer, 'method', '?')}) has no low-rank form; {INSTEAD}")


def pretrained_backbone(ckpt: Mapping[str, Any], backbone_checkpoint: str | Path | None = None,
                        pretrained_dir: str | Path | None = None) -> nn.Module:
    """The pre-trained backbone the system of ``ckpt`` was fine-tuned from (not adapted).

    builtin: read from ``backbone_checkpoint`` (the pretrain stage's final.pt); wavlm/hubert:
    from ``pretrained_dir`` or else the model.path recorded in the checkpoint.
    """
    from spectral.models import ModelConfig
    from spectral.models.speaker import load_pretrained_builtin
    from spectral.models.ssl import load_ssl_backbone

    model_cfg = ModelConfig.from_dict(ckpt["config"]["model"])
    if model_cfg.backbone == "builtin":
        if not backbone_checkpoint:
            raise InputError("--backbone-checkpoint", "peft/ of a builtin system needs the pretrain stage's final.pt")
        backbone, _ = load_pretrained_builtin(backbone_checkpoint)
        return backbone.eval()
    return load_ssl_backbone(pretrained_dir or model_cfg.path, model_cfg.backbone).eval()


def peft_tensors(ckpt: Mapping[str, Any], pretrained: nn.Module, factors: Mapping[str, Any] | None = None,
                 source: str = "factors.pt") -> tuple[dict[str, tuple[Tensor, Tensor]], nn.Module]:
    """{module name: (B, A)} with W_pretrained + B A = the fine-tuned weight, and the adapter root.

    ``pretrained`` is the backbone of :func:`pretrained_backbone` (modified: adapters are
    applied to it, so pass a fresh one); ``factors`` the svd stage's (for spectralft, pissa
    and milora: the same file the finetune stage read, since the singular vectors' signs
    fix what the trained tensors mean). Module names are those of the adapter root (the
    transformers model for WavLM/HuBERT, the backbone for builtin).
    """
    from spectral.adapters import AdapterConfig, LowRankLayer, adapter_layers, apply_adapters, find_targets, load_adapters
    from spectral.adapters.api import USES_FACTORS

    cfg_dict = ckpt["config"].get("adapter")
    check_low_rank(cfg_dict)
    cfg = AdapterConfig.from_dict(cfg_dict)
    root = pretrained.model if hasattr(pretrained, "model") else pretrained
    names = find_targets(root, cfg.targets)
    if cfg.method in USES_FACTORS:
        if factors is None:
            raise InputError("--factors", f"method {cfg.method} needs the svd stage's factors.pt the finetune stage read")
        from spectral.svd import factors_by_module

        factors = factors_by_module(factors, names, source)
    else:
        factors = None
    apply_adapters(root, cfg, factors=factors)
    layers = adapter_layers(root)
    initial = {n: (l.B.detach().clone(), l.A.detach().clone()) for n, l in layers.items()
               if isinstance(l, LowRankLayer) and l.method != "lora"}
    try:
        load_adapters(root, ckpt["adapters"])
    except ValueError as err:
        raise InputError("final.pt", f"its adapter tensors do not fit the pre-trained backbone ({err})") from None
    return {n: layer_delta(l, initial.get(n)) for n, l in layers.items()}, root


def check_against_checkpoint(ckpt: Mapping[str, Any], pretrained_state: Mapping[str, Tensor],
                             deltas: Mapping[str, tuple[Tensor, Tensor]], prefix: str, atol: float = 1e-4) -> float:
    """Check that pre-trained + B A equals final.pt's merged weight for every adapted module.

    ``pretrained_state`` is the adapter root's state dict *before* adapters were applied,
    ``prefix`` the key prefix of the root in final.pt's model state ("backbone." or
    "backbone.model."). Every other backbone tensor must be unchanged too (else the adapter
    alone would not give the fine-tuned model). Returns the largest weight difference;
    raises InputError when the pre-trained backbone or the factors are not the ones trained from.
    """
    model = ckpt["model"]
    worst = 0.0
    for name, (b, a) in deltas.items():
        key = f"{prefix}{name}.weight"
        merged = model[key].to(torch.float32)
        ours = pretrained_state[f"{name}.weight"].to(torch.float32) + b @ a
        worst = max(worst, float((merged - ours).abs().max()))
    if worst > atol:
        raise InputError("final.pt", f"pre-trained weights + the peft adapter differ from its merged weights by {worst:.3g} "
                                     f"(> {atol:g}): is it the backbone and factors.pt the system was fine-tuned from?")
    adapted = {f"{n}.weight" for n in deltas}
    for key, value in pretrained_state.items():
        if key in adapted or f"{prefix}{key}" not in model:
            continue
        diff = float((model[f"{prefix}{key}"].to(torch.float32) - value.to(torch.float32)).abs().max()) if value.numel() else 0.0
        if diff > atol:
            raise InputError("final.pt", f"backbone tensor {key!r} differs from the pre-trained one by {diff:.3g}: "
                                         "the adapter alone does not reproduce this system")
    return worst


def write_peft(deltas: Mapping[str, tuple[Tensor, Tensor]], out_dir: str | Path, base_model: str = "",
               method: str = "", extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``adapter_config.json`` and ``adapter_model.safetensors`` (peft LoRA format) to ``out_dir``.

    ``deltas``: {module name: (B (m x q), A (q x n))}, every q equal; lora_alpha = q, so
    peft's scale is 1. ``base_model`` goes into base_model_name_or_path. Atomic: written to
    a temporary directory and renamed.
    """
    from safetensors.torch import save_file

    ranks = {a.shape[0] for _, a in deltas.values()}
    if len(ranks) != 1:
        raise ValueError(f"every module's adapter must have the same rank, got {sorted(ranks)}")
    rank = ranks.pop()
    tensors = {}
    for name, (b, a) in deltas.items():
        tensors[f"base_model.model.{name}.lora_A.weight"] = a.detach().to(torch.float32).contiguous()
        tensors[f"base_model.model.{name}.lora_B.weight"] = b.detach().to(torch.float32).contiguous()
    config = {
        "peft_type": "LORA",
        "task_type": None,
        "base_model_name_or_path": base_model,
        "inference_mode": True,
        "r": rank,
        "lora_alpha": rank,
        "lora_dropout": 0.0,
        "target_modules": sorted(deltas),
        "bias": "none",
        "fan_in_fan_out": False,
        "init_lora_weights": True,
        "use_rslora": False,
        "use_dora": False,
        "modules_to_save": None,
        "revision": None,
    }
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:  # beside the old one, swapped in when complete
        save_file(tensors, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
        if extra:
            (tmp / "spectral_export.json").write_text(json.dumps({"method": method, **extra}, indent=2) + "\n")
    log.info("wrote %s: %d modules, rank %d (%s)", out_dir, len(deltas), rank, method)
    return out_dir


def export_peft(ckpt: Mapping[str, Any], out_dir: str | Path, backbone_checkpoint: str | Path | None = None,
                pretrained_dir: str | Path | None = None, factors_path: str | Path | None = None) -> Path:
    """The whole peft/ export of one system: convert, check against final.pt, write; return ``out_dir``.

    Raises :class:`NoLowRankForm` (a ValueError) for methods without an exact low-rank form.
    """
    check_low_rank(ckpt["config"].get("adapter"))
    factors = None
    if factors_path:
        from spectral.svd import load_factors

        factors = load_factors(factors_path)
    pretrained = pretrained_backbone(ckpt, backbone_checkpoint, pretrained_dir)
    root = pretrained.model if hasattr(pretrained, "model") else pretrained
    pretrained_state = {k: v.detach().clone() for k, v in root.state_dict().items()}
    deltas, _ = peft_tensors(ckpt, pretrained, factors, str(factors_path))
    prefix = "backbone.model." if hasattr(pretrained, "model") else "backbone."
    worst = check_against_checkpoint(ckpt, pretrained_state, deltas, prefix)
    method = ckpt["config"]["adapter"]["method"]
    base = str(pretrained_dir or ckpt["config"]["model"].get("path") or backbone_checkpoint or "")
    extra = {"system": ckpt.get("system"), "pretrained": base, "factors": str(factors_path) if factors_path else None,
             "rank": next(iter(deltas.values()))[1].shape[0], "max_abs_weight_difference": worst,
             "note": "peft's scale is 1 (lora_alpha = r); the method's own scale is folded into lora_B"}
    return write_peft(deltas, out_dir, base_model=base, method=method, extra=extra)
