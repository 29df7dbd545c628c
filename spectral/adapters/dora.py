"""DoRA: weight-decomposed low-rank adaptation (Liu et al. 2024).

W' = diag(g / ||W + s B A||_row) (W + s B A), with the magnitude g (m,) initialised to the
row norms of W, B (m x r) zero and A (r x n) Kaiming-uniform, so W' = W at start. Norms are
taken per output unit (rows of the out x in weight), as peft does; unlike peft's default the
norm is not detached, so the gradient is the exact one. Trainable values: r(m + n) + m.

The factored forward never forms an m x n matrix: with w_i the rows of W,
||w_i + s (BA)_i||^2 = ||w_i||^2 + 2 s <B_i, (W A^T)_i> + s^2 B_i (A A^T) B_i^T.
Reads and writes no files.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spectral.adapters.base import AdapterLayer
from spectral.adapters.config import AdapterConfig


class DoRALayer(AdapterLayer):
    """Magnitude/direction adapter on a frozen ``nn.Linear`` (see module docstring)."""

    method = "dora"

    def __init__(
        self, base_layer: nn.Linear, cfg: AdapterConfig, factors: dict[str, Tensor] | None = None, name: str = ""
    ) -> None:
        super().__init__(base_layer, cfg)
        m, n, r = self.out_features, self.in_features, cfg.rank
        self.rank = r
        weight = base_layer.weight
        like = dict(device=weight.device, dtype=weight.dtype)
        self.A = nn.Parameter(torch.empty(r, n, **like))
        self.B = nn.Parameter(torch.zeros(m, r, **like))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        with torch.no_grad():
            row_sq = weight.to(torch.float64).pow(2).sum(dim=1)
        self.register_buffer("row_sqnorm", row_sq.to(**like))
        self.magnitude = nn.Parameter(row_sq.sqrt().to(**like))

    def _row_norm(self) -> Tensor:
        s = self.scaling
        cross = (self.B * (self.base_layer.weight @ self.A.T)).sum(dim=1)
        square = ((self.B @ (self.A @ self.A.T)) * self.B).sum(dim=1)
        return (self.row_sqnorm + 2 * s * cross + s * s * square).clamp_min(0).sqrt()

    def adapted_weight(self) -> Tensor:
        direction = self.base_layer.weight + self.scaling * (self.B @ self.A)
        norm = direction.norm(dim=1)
        return (self.magnitude / norm)[:, None] * direction

    def _forward_factored(self, x: Tensor) -> Tensor:
        scale = self.magnitude / self._row_norm()
        y = F.linear(x, self.base_layer.weight) + self.scaling * F.linear(
            F.linear(self.adapter_dropout(x), self.A), self.B
        )
        y = y * scale
        return y if self.base_layer.bias is None else y + self.base_layer.bias

    def _costs(self, tokens: int, grad: bool) -> tuple[float, float]:
        m, n, r = self.out_features, self.in_features, self.rank
        mult = 3 if grad else 1
        big = float(tokens) * m * n
        norm = float(m) * n * r
        factored = (2 if grad else 1) * big + mult * (norm + float(tokens) * r * (m + n))
        materialised = mult * (big + norm + float(m) * n)
        return factored, materialised

    def extra_repr(self) -> str:
        return super().extra_repr() + f", rank={self.rank}, scaling={self.scaling:g}"
