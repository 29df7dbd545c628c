"""The built-in backbone: a small Transformer encoder over 80-dim fbank, sized for a 2-core CPU.

Used by the embedded default, where the pipeline pre-trains its own backbone (stage
pretrain) instead of loading WavLM or HuBERT. Its modules carry the names of
``transformers``' WavLM, so adapter targets are written once for both::

    encoder.layers.N.attention.{q_proj, k_proj, v_proj, out_proj}
    encoder.layers.N.feed_forward.{intermediate_dense, output_dense}

Input: (batch, frames, mel bins) fbank; a convolutional front end subsamples time by
``subsample`` (1 or 2), a grouped convolution adds relative position, then ``num_layers``
pre-LayerNorm Transformer layers. ``forward`` returns every hidden state (the front end's
output and each layer's, the last one layer-normed), as WavLM's ``output_hidden_states``
does. Reads and writes no files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spectral.settings import help_meta as _meta, strict_from_dict


@dataclass
class BuiltinConfig:
    """Shape of the built-in Transformer; every field carries its help text."""

    n_mels: int = field(default=80, metadata=_meta("Input feature dimension (fbank mel bins)."))
    d_model: int = field(default=128, metadata=_meta("Transformer width (hidden size)."))
    num_layers: int = field(default=4, metadata=_meta("Number of Transformer layers."))
    num_heads: int = field(default=4, metadata=_meta("Attention heads; must divide d_model."))
    ffn_dim: int = field(default=512, metadata=_meta("Inner size of each feed-forward block."))
    subsample: int = field(default=2, metadata=_meta("Time subsampling of the convolutional front end (1 or 2)."))
    pos_kernel: int = field(default=15, metadata=_meta("Kernel of the convolutional relative position embedding (odd)."))
    dropout: float = field(default=0.0, metadata=_meta("Dropout in attention, feed-forward and residual paths."))

    def __post_init__(self) -> None:
        for name in ("n_mels", "d_model", "num_layers", "num_heads", "ffn_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"model.builtin.{name} must be an integer >= 1, got {value!r}")
        if self.d_model % self.num_heads:
            raise ValueError(f"model.builtin.num_heads ({self.num_heads}) must divide d_model ({self.d_model})")
        if self.subsample not in (1, 2):
            raise ValueError(f"model.builtin.subsample must be 1 or 2, got {self.subsample!r}")
        if not isinstance(self.pos_kernel, int) or self.pos_kernel < 1 or self.pos_kernel % 2 == 0:
            raise ValueError(f"model.builtin.pos_kernel must be an odd integer >= 1, got {self.pos_kernel!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"model.builtin.dropout must be in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BuiltinConfig":
        return strict_from_dict(cls, data, "model.builtin")


class Attention(nn.Module):
    """Multi-head self-attention with WavLM's projection names."""

    def __init__(self, d_model: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        h = self.num_heads

        def heads(y: Tensor) -> Tensor:
            return y.view(b, t, h, d // h).transpose(1, 2)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    """Two-layer GELU feed-forward block with WavLM's names."""

    def __init__(self, d_model: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(d_model, ffn_dim)
        self.output_dense = nn.Linear(ffn_dim, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.output_dense(self.dropout(F.gelu(self.intermediate_dense(x))))


class EncoderLayer(nn.Module):
    """Pre-LayerNorm Transformer layer (WavLM-Large's "stable layer norm" order)."""

    def __init__(self, cfg: BuiltinConfig) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(cfg.d_model)
        self.attention = Attention(cfg.d_model, cfg.num_heads, cfg.dropout)
        self.final_layer_norm = nn.LayerNorm(cfg.d_model)
        self.feed_forward = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.dropout(self.attention(self.layer_norm(x)))
        return x + self.dropout(self.feed_forward(self.final_layer_norm(x)))


class Encoder(nn.Module):
    """Position convolution, the Transformer layers and the final LayerNorm."""

    def __init__(self, cfg: BuiltinConfig) -> None:
        super().__init__()
        groups = 4 if cfg.d_model % 4 == 0 else 1
        self.pos_conv = nn.Conv1d(cfg.d_model, cfg.d_model, cfg.pos_kernel, padding=cfg.pos_kernel // 2, groups=groups)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.num_layers))
        self.layer_norm = nn.LayerNorm(cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = x + F.gelu(self.pos_conv(x.transpose(1, 2))).transpose(1, 2)
        x = self.dropout(x)
        states = [x]
        for i, layer in enumerate(self.layers):
            x = layer(x)
            states.append(self.layer_norm(x) if i == len(self.layers) - 1 else x)
        return states


class BuiltinBackbone(nn.Module):
    """fbank (batch, frames, n_mels) -> list of num_layers + 1 hidden states (batch, frames', d_model)."""

    input_kind = "fbank"

    def __init__(self, cfg: BuiltinConfig | None = None) -> None:
        super().__init__()
        self.config = cfg or BuiltinConfig()
        c = self.config
        self.feature_extractor = nn.Sequential(
            nn.Conv1d(c.n_mels, c.d_model, 3, stride=c.subsample, padding=1),
            nn.GELU(),
            nn.Conv1d(c.d_model, c.d_model, 3, padding=1),
            nn.GELU(),
        )
        self.feature_projection = nn.LayerNorm(c.d_model)
        self.encoder = Encoder(c)

    @property
    def hidden_size(self) -> int:
        return self.config.d_model

    @property
    def num_hidden_states(self) -> int:
        return self.config.num_layers + 1

    def forward(self, feats: Tensor) -> list[Tensor]:
        if feats.dim() != 3 or feats.shape[-1] != self.config.n_mels:
            raise ValueError(f"expected fbank of shape (batch, frames, {self.config.n_mels}), got {tuple(feats.shape)}")
        x = self.feature_extractor(feats.transpose(1, 2)).transpose(1, 2)
        return self.encoder(self.feature_projection(x))
