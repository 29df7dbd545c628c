"""The settings of the speaker model, without torch: the shapes of the built-in backbone
(:class:`BuiltinConfig`) and the back-end (:class:`BackendConfig`), and which backbone to use
(:class:`ModelConfig`), each checked when built. The workflow reads them at parse time (system
names, ``snakemake -n``), which must not pay for importing torch; the modules that build the
networks (``builtin``, ``backend``, ``speaker``) import them from here. Reads and writes no files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spectral.settings import Settings, check_int, help_meta as _meta

#: Backbone kinds: the built-in fbank Transformer and the transformers SSL models.
BACKBONES: tuple[str, ...] = ("builtin", "wavlm", "hubert")


@dataclass
class BuiltinConfig(Settings):
    """Shape of the built-in Transformer; every field carries its help text."""

    n_mels: int = field(default=80, metadata=_meta("Input feature dimension (fbank mel bins)."))
    d_model: int = field(default=128, metadata=_meta("Transformer width (hidden size)."))
    num_layers: int = field(default=4, metadata=_meta("Number of Transformer layers."))
    num_heads: int = field(default=4, metadata=_meta("Attention heads; must divide d_model."))
    ffn_dim: int = field(default=512, metadata=_meta("Inner size of each feed-forward block."))
    subsample: int = field(default=2, metadata=_meta("Time subsampling of the convolutional front end (1 or 2)."))
    pos_kernel: int = field(default=15, metadata=_meta("Kernel of the convolutional relative position embedding (odd)."))
    dropout: float = field(default=0.0, metadata=_meta("Dropout in attention, feed-forward and residual paths."))
    qk_init_scale: float = field(
        default=1.0,
        metadata=_meta(
            "Factor on the initial q_proj and k_proj weights (1 = PyTorch's default Linear init). Below 1 the "
            "random bulk of the initial spectrum is small, so pre-training's learned directions become the top-k "
            "singular subspaces the spectral methods act on."
        ),
    )

    def __post_init__(self) -> None:
        for name in ("n_mels", "d_model", "num_layers", "num_heads", "ffn_dim"):
            check_int("model.builtin", name, getattr(self, name), 1)
        if self.d_model % self.num_heads:
            raise ValueError(f"model.builtin.num_heads ({self.num_heads}) must divide d_model ({self.d_model})")
        if self.subsample not in (1, 2):
            raise ValueError(f"model.builtin.subsample must be 1 or 2, got {self.subsample!r}")
        if not isinstance(self.pos_kernel, int) or self.pos_kernel < 1 or self.pos_kernel % 2 == 0:
            raise ValueError(f"model.builtin.pos_kernel must be an odd integer >= 1, got {self.pos_kernel!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"model.builtin.dropout must be in [0, 1), got {self.dropout!r}")
        if isinstance(self.qk_init_scale, bool) or not isinstance(self.qk_init_scale, (int, float)) or not self.qk_init_scale > 0:
            raise ValueError(f"model.builtin.qk_init_scale must be a number > 0, got {self.qk_init_scale!r}")

    SECTION = "model.builtin"



@dataclass
class BackendConfig(Settings):
    """Shape of the speaker back-end and its loss; every field carries its help text."""

    channels: int = field(default=64, metadata=_meta("ECAPA-TDNN channels C (1024 in the paper preset)."))
    embed_dim: int = field(default=192, metadata=_meta("Speaker embedding dimension."))
    scale: int = field(default=8, metadata=_meta("Res2Net scale (number of channel groups); must divide channels."))
    se_bottleneck: int = field(default=64, metadata=_meta("Squeeze-excitation bottleneck width."))
    attention_channels: int = field(default=64, metadata=_meta("Hidden width of attentive statistics pooling."))
    margin: float = field(default=0.2, metadata=_meta("AAM-softmax additive angular margin m (0.3 in the paper preset); training ramps it up from 0 over the first half of each stage's steps."))
    loss_scale: float = field(default=30.0, metadata=_meta("AAM-softmax scale s (32 in the paper preset)."))
    first_state: int = field(
        default=0,
        metadata=_meta("Index of the first hidden state in the weighted sum: 0 takes every state, as in the paper; "
                       "1 leaves out hidden state 0 (the front end, before any attention layer), so the back-end "
                       "cannot read the features around the adapted layers directly."))

    def __post_init__(self) -> None:
        check_int("backend", "first_state", self.first_state, 0)
        for name in ("channels", "embed_dim", "scale", "se_bottleneck", "attention_channels"):
            check_int("backend", name, getattr(self, name), 1)
        if self.channels % self.scale:
            raise ValueError(f"backend.scale ({self.scale}) must divide backend.channels ({self.channels})")
        if not 0.0 <= float(self.margin) < math.pi / 2:
            raise ValueError(f"backend.margin must be in [0, pi/2), got {self.margin!r}")
        if not float(self.loss_scale) > 0:
            raise ValueError(f"backend.loss_scale must be > 0, got {self.loss_scale!r}")

    SECTION = "backend"



@dataclass
class ModelConfig(Settings):
    """Which backbone, and where its weights come from; every field carries its help text."""

    backbone: str = field(
        default="builtin",
        metadata=_meta("builtin (small fbank Transformer pre-trained by the pipeline), wavlm or hubert (transformers, raw waveform)."),
    )
    path: str | None = field(
        default=None,
        metadata=_meta("wavlm/hubert: local transformers model directory (save_pretrained layout); builtin: a shipped "
                       "backbone directory (final.pt, SHA256SUMS, recipe.yaml; e.g. models/builtin) to start from "
                       "instead of the pretrain stage, or null to pre-train here."),
    )
    builtin: BuiltinConfig = field(default_factory=BuiltinConfig, metadata=_meta("Shape of the built-in backbone."))

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"model.backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if isinstance(self.builtin, Mapping):
            self.builtin = BuiltinConfig.from_dict(dict(self.builtin))
        if self.backbone != "builtin" and not self.path:
            raise ValueError(f"model.path must name a local transformers directory for backbone {self.backbone!r}")

    SECTION = "model"

    @property
    def input_kind(self) -> str:
        """"fbank" for builtin, "waveform" for the SSL backbones."""
        return "fbank" if self.backbone == "builtin" else "waveform"


def builtin_linear_shapes(cfg: BuiltinConfig) -> dict[str, tuple[int, int]]:
    """(out, in) of every ``nn.Linear`` of the built-in backbone of shape ``cfg``, by module name
    in ``named_modules`` order (tests/models/test_builtin.py checks it against the network)."""
    d, f = cfg.d_model, cfg.ffn_dim
    shapes: dict[str, tuple[int, int]] = {}
    for i in range(cfg.num_layers):
        base = f"encoder.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[f"{base}.attention.{proj}"] = (d, d)
        shapes[f"{base}.feed_forward.intermediate_dense"] = (f, d)
        shapes[f"{base}.feed_forward.output_dense"] = (d, f)
    return shapes
