"""Tiny trained systems for the export tests, built directly (no training run): a pre-trained
backbone (builtin final.pt or a saved tiny WavLM/HuBERT), the svd factors, adapters applied and
moved away from their initial values, and the finetune stage's final.pt layout."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

from spectral.adapters import AdapterConfig, adapter_state_dict, apply_adapters, decompose, find_targets, merge_adapters
from spectral.adapters.api import USES_FACTORS
from spectral.models import BackendConfig, BuiltinConfig, ModelConfig, SpeakerModel, adapter_root, build_backbone
from spectral.models.speaker import CHECKPOINT_FORMAT
from spectral.svd import FACTORS_FORMAT

BACKEND = BackendConfig(channels=16, scale=4, se_bottleneck=8, attention_channels=8, embed_dim=8)
BUILTIN = BuiltinConfig(d_model=16, num_layers=2, num_heads=2, ffn_dim=32)
TINY_SSL = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
    # WavLM's real frame rate (stride 320: 50 frames a second), so a 20 s utterance stays ~1000 frames
    conv_dim=(16, 16, 16), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8),
    num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
)
SPEAKERS = ["id0", "id1", "id2"]


@dataclass
class System:
    """Paths of one tiny system: its final.pt and what the export stage reads beside it."""

    final: Path
    backbone_checkpoint: Path | None  # builtin: the pretrain final.pt
    pretrained_dir: Path | None  # wavlm/hubert: the saved transformers directory
    factors: Path | None
    kind: str  # "builtin", "wavlm" or "hubert"


def save_tiny_ssl(kind: str, path: Path) -> Path:
    import transformers

    torch.manual_seed(0)
    if kind == "wavlm":
        model = transformers.WavLMModel(transformers.WavLMConfig(num_buckets=16, max_bucket_distance=32, **TINY_SSL))
    else:
        model = transformers.HubertModel(transformers.HubertConfig(**TINY_SSL))
    model.save_pretrained(str(path))
    return path


def _randomise_backend(model: SpeakerModel, gen: torch.Generator) -> None:
    with torch.no_grad():
        for name, buf in model.backend.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(0.1 * torch.randn(buf.shape, generator=gen))
            elif name.endswith("running_var"):
                buf.copy_(0.5 + torch.rand(buf.shape, generator=gen))
        model.backend.layer_weights.weights.copy_(torch.randn(model.backend.layer_weights.weights.shape, generator=gen))


def make_system(root: Path, kind: str = "builtin", method: str = "spectralft", rank: int = 2, top_k: int = 4,
                alpha: float | None = None, keep_residual: bool = True, seed: int = 0, first_state: int = 0) -> System:
    """Write a tiny 'fine-tuned' system under ``root``; return its paths (``first_state``: backend.first_state)."""
    backend = BackendConfig(**{**BACKEND.to_dict(), "first_state": first_state})
    root.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    backbone_checkpoint = pretrained_dir = None
    if kind == "builtin":
        model_cfg = ModelConfig(backbone="builtin", builtin=BUILTIN)
        pre = SpeakerModel(build_backbone(model_cfg), BACKEND, len(SPEAKERS))
        backbone_checkpoint = root / "pretrain_final.pt"
        torch.save({"format": CHECKPOINT_FORMAT, "model": pre.state_dict(),
                    "config": {"model": model_cfg.to_dict(), "backend": BACKEND.to_dict(), "adapter": None},
                    "speakers": SPEAKERS, "system": "pretrain"}, backbone_checkpoint)
        model = SpeakerModel(build_backbone(model_cfg), backend, len(SPEAKERS))
        model.backbone.load_state_dict(pre.backbone.state_dict())
    else:
        pretrained_dir = save_tiny_ssl(kind, root / f"pretrained_{kind}")
        model_cfg = ModelConfig(backbone=kind, path=str(pretrained_dir))
        model = SpeakerModel(build_backbone(model_cfg), backend, len(SPEAKERS))
    _randomise_backend(model, gen)
    cfg = AdapterConfig(method=method, targets=["q_proj", "k_proj"], rank=rank, top_k=top_k, alpha=alpha,
                        keep_residual=keep_residual)
    ar = adapter_root(model)
    factors = factors_path = None
    if method in USES_FACTORS:
        bottom = rank if method == "milora" else 0
        factors = {n: decompose(ar.get_submodule(n).weight.detach(), max(top_k, rank), bottom=bottom)
                   for n in find_targets(ar, cfg.targets)}
        factors_path = root / "factors.pt"
        torch.save({"format": FACTORS_FORMAT, "factors": factors}, factors_path)
    apply_adapters(ar, cfg, factors=factors)
    with torch.no_grad():  # as if trained: every trained tensor away from its initial value
        for p in ar.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
    adapters = {} if method == "full" else adapter_state_dict(ar)
    merged = copy.deepcopy(model).eval()
    merge_adapters(adapter_root(merged))
    ssl_config = None if kind == "builtin" else merged.backbone.model.config.to_dict()
    final = root / "final.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model": {k: v.detach() for k, v in merged.state_dict().items()},
                "config": {"model": model_cfg.to_dict(), "backend": backend.to_dict(), "adapter": cfg.to_dict(),
                           "ssl_config": ssl_config},
                "speakers": SPEAKERS, "system": f"tiny-{kind}-{method}", "adapters": adapters}, final)
    return System(final, backbone_checkpoint, pretrained_dir, factors_path, kind)
