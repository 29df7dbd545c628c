"""Tiny models for the adapter tests: two target projections of chosen shape and a head.

Imported by the test modules of this folder (pytest puts the folder on sys.path)."""

from __future__ import annotations

import torch
from torch import nn


class TinyBackbone(nn.Module):
    """x (.., n) -> head(tanh(q_proj(x)) * k_proj(x)); q_proj and k_proj are m x n (out x in)."""

    def __init__(self, m: int, n: int, bias: bool = True) -> None:
        super().__init__()
        self.q_proj = nn.Linear(n, m, bias=bias)
        self.k_proj = nn.Linear(n, m, bias=bias)
        self.head = nn.Linear(m, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.q_proj(x)) * self.k_proj(x))


def make_backbone(m: int, n: int, seed: int = 0, bias: bool = True) -> TinyBackbone:
    """A TinyBackbone whose weights depend only on (m, n, seed); spectra decay like trained ones."""
    torch.manual_seed(seed)
    model = TinyBackbone(m, n, bias=bias)
    with torch.no_grad():
        for proj in (model.q_proj, model.k_proj):
            p = min(m, n)
            u, _ = torch.linalg.qr(torch.randn(m, p))
            v, _ = torch.linalg.qr(torch.randn(n, p))
            s = 1.0 / torch.arange(1, p + 1, dtype=torch.float32).sqrt()
            proj.weight.copy_((u * s) @ v.T)
    return model


def perturb_adapters(model: nn.Module, scale: float = 0.05, seed: int = 1) -> None:
    """Add small random noise to every trainable tensor, as if the model had been trained."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(scale * torch.randn(param.shape, generator=gen))
