"""Low-rank additive adapters on the full weight: LoRA, PiSSA and MiLoRA.

All three compute W' = W_0 + s B A with B (m x r), A (r x n), s = alpha / r, and differ
only in initialisation:

``lora``    W_0 = W, B = 0, A Kaiming-uniform (Hu et al. 2021), so W' = W at start.
``pissa``   the top-r triplets move into the adapter: B = U_r sqrt(S_r / s),
            A = sqrt(S_r / s) V_r^T, and the frozen W_0 = W - s B A is the residual
            (Meng et al. 2024; the same convention as peft's ``init_lora_weights="pissa"``).
``milora``  the same with the bottom-r triplets (Wang et al. 2024), so training starts in
            the minor singular directions and leaves the principal ones frozen.

Trainable values per matrix: r(m + n). For pissa and milora the residual is written into the
wrapped layer's weight in place, as peft does. Reads and writes no files.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spectral.adapters.base import AdapterLayer, bottom_factors, top_factors
from spectral.adapters.config import AdapterConfig


class LowRankLayer(AdapterLayer):
    """W' = W_0 + s B A; ``init`` is "lora", "pissa" or "milora" (see module docstring)."""

    method = "lora"

    def __init__(
        self,
        base_layer: nn.Linear,
        cfg: AdapterConfig,
        factors: dict[str, Tensor] | None = None,
        name: str = "",
    ) -> None:
        super().__init__(base_layer, cfg)
        self.method = cfg.method
        m, n, r = self.out_features, self.in_features, cfg.rank
        self.rank = r
        weight = base_layer.weight
        like = dict(device=weight.device, dtype=weight.dtype)
        self.A = nn.Parameter(torch.empty(r, n, **like))
        self.B = nn.Parameter(torch.zeros(m, r, **like))
        if cfg.method == "lora":
            nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
            return
        if cfg.method == "pissa":
            U, S, Vh = top_factors(weight, r, factors, name)
        elif cfg.method == "milora":
            U, S, Vh = bottom_factors(weight, r, factors, name)
        else:
            raise ValueError(f"LowRankLayer implements lora, pissa and milora, not {cfg.method!r}")
        root = torch.sqrt(S / self.scaling)
        b64 = U * root
        a64 = root[:, None] * Vh
        with torch.no_grad():
            self.B.copy_(b64)
            self.A.copy_(a64)
            residual = weight.to(torch.float64) - self.scaling * (b64 @ a64)
            weight.copy_(residual)

    def delta_weight(self) -> Tensor:
        """s B A, the adapter's change of the frozen weight."""
        return self.scaling * (self.B @ self.A)

    def adapted_weight(self) -> Tensor:
        return self.base_layer.weight + self.delta_weight()

    def _forward_factored(self, x: Tensor) -> Tensor:
        y = F.linear(x, self.base_layer.weight, self.base_layer.bias)
        return y + self.scaling * F.linear(F.linear(self.adapter_dropout(x), self.A), self.B)

    def _costs(self, tokens: int, grad: bool) -> tuple[float, float]:
        m, n, r = self.out_features, self.in_features, self.rank
        mult = 3 if grad else 1
        big = float(tokens) * m * n
        factored = (2 if grad else 1) * big + mult * float(tokens) * r * (m + n)
        materialised = mult * (big + float(r) * m * n)
        return factored, materialised

    def extra_repr(self) -> str:
        return super().extra_repr() + f", rank={self.rank}, scaling={self.scaling:g}"
