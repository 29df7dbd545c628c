"""The wrapper every adapter method shares: a frozen ``nn.Linear`` plus trainable tensors.

As in peft's LoRA layer, the adapter *wraps* the base layer (kept intact as
``self.base_layer``) instead of subclassing it. A method subclass says three things:
``adapted_weight()`` (the pure W' for merging), ``_forward_factored(x)`` (y without forming
W') and ``_costs()`` (multiply-accumulates of each way). ``forward`` then picks, per call,
the cheaper of the factored product and materialising W' once, from the number of tokens
and whether a gradient is needed. Under mixed precision (autocast, :mod:`spectral.train.precision`)
the methods that form weights or factors (:data:`FP32_METHODS`) run in float32 with autocast
off, so W' and the SVD factors are never rounded to half precision; only the products with
the input run in the autocast dtype. Reads and writes no files.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spectral.adapters.config import AdapterConfig
from spectral.adapters.decompose import check_factors, decompose

#: Values of ``AdapterLayer.path``: "auto" chooses per call; the others force one way.
PATHS: tuple[str, ...] = ("auto", "factored", "materialised")


#: Methods of an adapter that form weights or factors; they run in float32 with autocast off.
FP32_METHODS: tuple[str, ...] = ("adapted_weight", "frozen_weight", "delta_weight", "delta_factors", "core_delta")


def _in_fp32(fn):
    """``fn`` with any active autocast switched off (weights stay float32)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from spectral.train.precision import full_precision

        with full_precision():
            return fn(*args, **kwargs)

    wrapper._fp32 = True  # type: ignore[attr-defined]
    return wrapper


class AdapterLayer(nn.Module):
    """A frozen ``nn.Linear`` (``base_layer``) with a method's trainable adapter tensors.

    Subclasses define ``method``, ``adapted_weight``, ``_forward_factored`` and ``_costs``.
    The forward returns ``F.linear(x, W', bias)`` computed one of two ways (see ``path``).
    """

    method: str = ""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for name in FP32_METHODS:
            fn = cls.__dict__.get(name)
            if fn is not None and not getattr(fn, "_fp32", False):
                setattr(cls, name, _in_fp32(fn))

    def __init__(self, base_layer: nn.Linear, cfg: AdapterConfig) -> None:
        super().__init__()
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(f"{type(self).__name__} wraps nn.Linear, got {type(base_layer).__name__}")
        self.base_layer = base_layer
        for param in base_layer.parameters():
            param.requires_grad_(False)
        self.out_features, self.in_features = base_layer.weight.shape
        self.scaling = cfg.scaling
        self.adapter_dropout: nn.Module = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        #: "auto" (cheaper way per call), "factored" or "materialised" (forced, for tests).
        self.path = "auto"

    # -- what a method defines -------------------------------------------------------

    def adapted_weight(self) -> Tensor:
        """The adapted weight W' (out x in) as a function of the current parameters."""
        raise TypeError(f"{type(self).__name__} does not define adapted_weight")

    def _forward_factored(self, x: Tensor) -> Tensor:
        raise TypeError(f"{type(self).__name__} does not define _forward_factored")

    def _costs(self, tokens: int, grad: bool) -> tuple[float, float]:
        """Multiply-accumulates of (factored, materialised) for ``tokens`` rows of input."""
        raise TypeError(f"{type(self).__name__} does not define _costs")

    # -- shared behaviour --------------------------------------------------------------

    @property
    def weight(self) -> Tensor:
        """The adapted weight W', differentiable in the adapter tensors.

        Some backbones never call their projections but read ``.weight`` and ``.bias``
        directly: transformers' WavLM passes ``q_proj.weight`` to
        ``F.multi_head_attention_forward``. Returning W' here keeps the adapters in the
        computation there (they would otherwise be silently bypassed); the frozen base
        weight stays available as ``base_layer.weight``.
        """
        return self.adapted_weight()

    @property
    def bias(self) -> Tensor | None:
        """The frozen base bias."""
        return self.base_layer.bias

    def adapter_parameters(self) -> dict[str, nn.Parameter]:
        """The trainable tensors of this adapter, keyed by their name inside this module."""
        return {n: p for n, p in self.named_parameters() if not n.startswith("base_layer.")}

    def _dropout_active(self) -> bool:
        return self.training and not isinstance(self.adapter_dropout, nn.Identity)

    def choose_path(self, x: Tensor) -> str:
        """The way ``forward`` computes ``x``: "factored" or "materialised".

        "auto" compares the multiply-accumulates of both for this many tokens, with or
        without the backward pass; adapter dropout in training needs the factored way.
        """
        if self._dropout_active():
            if self.path == "materialised":
                raise RuntimeError(
                    f"{self.method}: adapter dropout applies to the adapter branch only, so the "
                    "materialised path cannot be used in training with dropout > 0"
                )
            return "factored"
        if self.path != "auto":
            return self.path
        tokens = x.numel() // max(x.shape[-1], 1)
        grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.adapter_parameters().values())
        factored, materialised = self._costs(tokens, grad)
        return "factored" if factored <= materialised else "materialised"

    def forward(self, x: Tensor) -> Tensor:
        if self.path not in PATHS:
            raise ValueError(f"path must be one of {PATHS}, got {self.path!r}")
        if self.choose_path(x) == "factored":
            return self._forward_factored(x)
        return F.linear(x, self.adapted_weight(), self.base_layer.bias)

    def merged_linear(self) -> nn.Linear:
        """A new plain, frozen ``nn.Linear`` holding W' and the base bias; ``self`` is unchanged."""
        base = self.base_layer
        with torch.no_grad():
            weight = self.adapted_weight().detach()
            linear = nn.Linear(
                self.in_features,
                self.out_features,
                bias=base.bias is not None,
                device=base.weight.device,
                dtype=base.weight.dtype,
            )
            linear.weight.copy_(weight)
            if base.bias is not None:
                linear.bias.copy_(base.bias)
        linear.requires_grad_(False)
        return linear

    def extra_repr(self) -> str:
        return f"method={self.method}, in_features={self.in_features}, out_features={self.out_features}"


def top_factors(
    weight: Tensor, k: int, factors: dict[str, Tensor] | None, name: str
) -> tuple[Tensor, Tensor, Tensor]:
    """The top ``k`` triplets (U (m,k), S (k,), Vh (k,n)) of ``weight`` in float64.

    Taken from precomputed ``factors`` (checked against the weight) or computed by a full
    float64 SVD. Raises ValueError naming ``name`` when k exceeds min(m, n).
    """
    m, n = weight.shape
    if k > min(m, n):
        raise ValueError(f"top_k/rank {k} exceeds min(m, n) = {min(m, n)} of {name!r} ({m}x{n})")
    if factors is None:
        factors = decompose(weight, k)
    else:
        check_factors(weight, factors, k, 0, name)
    f64 = dict(device=weight.device, dtype=torch.float64)
    return factors["U"][:, :k].to(**f64), factors["S"][:k].to(**f64), factors["Vh"][:k].to(**f64)


def bottom_factors(
    weight: Tensor, b: int, factors: dict[str, Tensor] | None, name: str
) -> tuple[Tensor, Tensor, Tensor]:
    """The bottom ``b`` triplets (U (m,b), S (b,), Vh (b,n)) of ``weight`` in float64.

    Taken from precomputed ``factors`` (which must hold trailing triplets, svd stage
    ``--bottom``) or computed by a full float64 SVD. Raises ValueError naming ``name``.
    """
    m, n = weight.shape
    p = min(m, n)
    if b > p:
        raise ValueError(f"rank {b} exceeds min(m, n) = {p} of {name!r} ({m}x{n})")
    if factors is None:
        factors = decompose(weight, 1, bottom=b)
    else:
        check_factors(weight, factors, 1, b, name)
    f64 = dict(device=weight.device, dtype=torch.float64)
    U = factors["U_bottom"][:, -b:].to(**f64)
    Vh = factors["Vh_bottom"][-b:].to(**f64)
    S = factors["S"][p - b :].to(**f64)
    return U, S, Vh


