"""Full fine-tuning of the matched layers: their weight and bias become trainable.

The reference with no rank limit on the same matrices the adapters touch; m n (+ m with a
bias) trainable values per matrix. The wrapper exists so that merging, adapter state and
counting treat ``full`` like every other method. Reads and writes no files.
"""

from __future__ import annotations

from torch import Tensor, nn

from spectral.adapters.base import AdapterLayer
from spectral.adapters.config import AdapterConfig


class FullLayer(AdapterLayer):
    """A wrapped ``nn.Linear`` whose own weight and bias are trained."""

    method = "full"

    def __init__(
        self, base_layer: nn.Linear, cfg: AdapterConfig, factors: dict[str, Tensor] | None = None, name: str = ""
    ) -> None:
        super().__init__(base_layer, cfg)
        for param in base_layer.parameters():
            param.requires_grad_(True)

    def adapter_parameters(self) -> dict[str, nn.Parameter]:
        return dict(self.named_parameters())

    def adapted_weight(self) -> Tensor:
        return self.base_layer.weight

    def forward(self, x: Tensor) -> Tensor:
        return self.base_layer(x)
