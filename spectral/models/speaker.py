"""The assembled speaker model (backbone + back-end + AAM head) and its ``final.pt`` checkpoints.

``final.pt`` (written by the pretrain and finetune stages, read by svd and embed) is a dict
saved with ``torch.save`` and read with ``weights_only=True``::

    {"format": "spectral-model/1",
     "model":  state dict of SpeakerModel ("backbone.*", "backend.*", "head.*"), adapters merged,
     "config": {"model": ..., "backend": ..., "adapter": ... or None, "train": ..., "augment": ...,
                "ssl_config": transformers config dict (SSL backbones) or None},
     "speakers": training speaker ids in head order, "system": system name,
     "adapters": the trained adapter tensors before merging (finetune only),
     "pretext": the masked-prediction head (pretrain with pretrain.objective masked only; its
                "backend.*" and "head.*" are then the untrained, seeded initialisation)}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from spectral.errors import InputError
from spectral.models.backend import AAMSoftmax, BackendConfig, SpeakerBackend
from spectral.models.builtin import BuiltinBackbone, BuiltinConfig

CHECKPOINT_FORMAT = "spectral-model/1"
#: Backbone kinds: the built-in fbank Transformer and the transformers SSL models.
BACKBONES: tuple[str, ...] = ("builtin", "wavlm", "hubert")


def _meta(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class ModelConfig:
    """Which backbone, and where its weights come from; every field carries its help text."""

    backbone: str = field(
        default="builtin",
        metadata=_meta("builtin (small fbank Transformer pre-trained by the pipeline), wavlm or hubert (transformers, raw waveform)."),
    )
    path: str | None = field(
        default=None,
        metadata=_meta("wavlm/hubert: local transformers model directory (save_pretrained layout); unused for builtin."),
    )
    builtin: BuiltinConfig = field(default_factory=BuiltinConfig, metadata=_meta("Shape of the built-in backbone."))

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"model.backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if isinstance(self.builtin, Mapping):
            self.builtin = BuiltinConfig.from_dict(dict(self.builtin))
        if self.backbone != "builtin" and not self.path:
            raise ValueError(f"model.path must name a local transformers directory for backbone {self.backbone!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**dict(data))

    @property
    def input_kind(self) -> str:
        """"fbank" for builtin, "waveform" for the SSL backbones."""
        return "fbank" if self.backbone == "builtin" else "waveform"


class SpeakerModel(nn.Module):
    """backbone -> back-end -> embedding; ``head`` (AAM-softmax over training speakers) for training."""

    def __init__(self, backbone: nn.Module, backend_cfg: BackendConfig, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.backend = SpeakerBackend(backbone.num_hidden_states, backbone.hidden_size, backend_cfg)
        self.head = AAMSoftmax(backend_cfg.embed_dim, num_classes, backend_cfg.margin, backend_cfg.loss_scale)

    def forward(self, x: Tensor) -> Tensor:
        """Input (fbank or waveform batch) -> (batch, embed_dim) embeddings."""
        return self.backend(self.backbone(x))


def adapter_root(model: SpeakerModel) -> nn.Module:
    """The module adapters go into: the built-in backbone, or the transformers model of an SSL one.

    Its module names (``encoder.layers.N.attention.q_proj``) are those the svd stage writes.
    """
    backbone = model.backbone
    return backbone.model if hasattr(backbone, "model") else backbone


def build_backbone(cfg: ModelConfig, ssl_config: Mapping[str, Any] | None = None) -> nn.Module:
    """A backbone for ``cfg``: builtin randomly initialised; wavlm/hubert loaded from ``cfg.path``.

    With ``ssl_config`` (a transformers config dict from a final.pt) an SSL backbone is built
    from it instead of read from disk, for loading a state dict afterwards.
    """
    if cfg.backbone == "builtin":
        return BuiltinBackbone(cfg.builtin)
    from spectral.models.ssl import load_ssl_backbone, ssl_backbone_from_config

    if ssl_config is not None:
        return ssl_backbone_from_config(dict(ssl_config), cfg.backbone)
    return load_ssl_backbone(cfg.path, cfg.backbone)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a ``final.pt`` with ``weights_only=True``; InputError naming the file when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such checkpoint (run the stage that writes it first)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InputError(path, f"cannot read the checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT or "model" not in ckpt or "config" not in ckpt:
        raise InputError(path, f"not a {CHECKPOINT_FORMAT} checkpoint (a final.pt of the pretrain or finetune stage)")
    return ckpt


def load_model_checkpoint(path: str | Path) -> tuple[SpeakerModel, dict[str, Any]]:
    """Rebuild the (merged) SpeakerModel a ``final.pt`` holds; return (model in eval mode, checkpoint)."""
    ckpt = read_checkpoint(path)
    config = ckpt["config"]
    model_cfg = ModelConfig.from_dict(config["model"])
    backbone = build_backbone(model_cfg, ssl_config=config.get("ssl_config"))
    model = SpeakerModel(backbone, BackendConfig.from_dict(config["backend"]), len(ckpt["speakers"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        raise InputError(path, f"the weights do not fit the model its config describes ({err})") from None
    return model.eval(), ckpt
