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
does. With ``lengths`` (real frames of each row of a zero-padded batch) padded frames are
kept out of every convolution and attention, so each row's real frames come out as they
would alone; :meth:`BuiltinBackbone.frame_lengths` says how many hidden-state frames are
real. Reads and writes no files.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spectral.models.config import BuiltinConfig


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

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        """``key_mask`` (batch, 1, 1, frames) bool: True on real frames, which alone are attended to."""
        b, t, d = x.shape
        h = self.num_heads

        def heads(y: Tensor) -> Tensor:
            return y.view(b, t, h, d // h).transpose(1, 2)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=self.dropout if self.training else 0.0)
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

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        x = x + self.dropout(self.attention(self.layer_norm(x), key_mask))
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

    def forward(self, x: Tensor, mask: Tensor | None = None) -> list[Tensor]:
        """``mask`` (batch, frames) bool: True on real frames; None when every frame is real."""
        key_mask = None
        if mask is not None:
            x = x * mask[:, :, None].to(x.dtype)  # the position convolution sees zeros past the end, as alone
            key_mask = mask[:, None, None, :]
        x = x + F.gelu(self.pos_conv(x.transpose(1, 2))).transpose(1, 2)
        x = self.dropout(x)
        states = [x]
        for i, layer in enumerate(self.layers):
            x = layer(x, key_mask)
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
        if c.qk_init_scale != 1.0:
            with torch.no_grad():
                for layer in self.encoder.layers:
                    layer.attention.q_proj.weight.mul_(c.qk_init_scale)
                    layer.attention.k_proj.weight.mul_(c.qk_init_scale)

    @property
    def hidden_size(self) -> int:
        return self.config.d_model

    @property
    def num_hidden_states(self) -> int:
        return self.config.num_layers + 1

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        """Hidden-state frames of inputs of ``lengths`` fbank frames."""
        s = self.config.subsample
        return (lengths + 2 - 3) // s + 1

    def forward(self, feats: Tensor, lengths: Tensor | None = None) -> list[Tensor]:
        """fbank (batch, frames, n_mels); ``lengths``: real frames of each row of a zero-padded batch."""
        if feats.dim() != 3 or feats.shape[-1] != self.config.n_mels:
            raise ValueError(f"expected fbank of shape (batch, frames, {self.config.n_mels}), got {tuple(feats.shape)}")
        if lengths is None:
            x = self.feature_extractor(feats.transpose(1, 2)).transpose(1, 2)
            return self.encoder(self.feature_projection(x))
        lengths = lengths.to(feats.device)
        t_in = torch.arange(feats.shape[1], device=feats.device)
        x = (feats * (t_in[None, :] < lengths[:, None])[:, :, None].to(feats.dtype)).transpose(1, 2)
        conv1, act1, conv2, act2 = self.feature_extractor
        x = act1(conv1(x))
        mask = torch.arange(x.shape[2], device=x.device)[None, :] < self.frame_lengths(lengths)[:, None]
        x = act2(conv2(x * mask[:, None, :].to(x.dtype))).transpose(1, 2)
        return self.encoder(self.feature_projection(x), mask)


def initial_backbone(cfg: BuiltinConfig, seed: int) -> BuiltinBackbone:
    """The backbone exactly as the pretrain stage initialises it: ``torch.manual_seed(seed)``, then
    :class:`BuiltinBackbone` (``cfg``), its parameters drawn first from the freshly seeded generator.

    The pretrain stage builds its model with this function (the back-end is drawn after it), so
    the svd stage can re-create the initialisation of a pre-trained ``final.pt`` from the seed
    it records (``final.pt["init"]``) and measure how far pre-training moved the spectrum.
    The result depends on the torch version's initialisers, which ``final.pt["init"]`` records too.
    """
    torch.manual_seed(seed)
    return BuiltinBackbone(cfg)
