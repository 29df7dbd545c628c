"""SpectralFT layers: adapt the top-k singular vectors of a frozen weight (the paper's method).

W (m x n) = W_p + W_m with W_p = U_k S_k V_k^T (top k triplets) and residual W_m = W - W_p.

``spectralft`` (additive, DESIGN.md "The method"):
    W' = W_m + (U_k + s B_U A_U) S_k (V_k + s B_V A_V)^T,   s = alpha / r
    so W' = W at initialisation; r(m + k) + r(n + k) trainable values. ``init="paper"`` (the
    default) starts as the paper's released code (``ptm.py``, ``SpectralAdapter``): B_U and A_V
    Kaiming-uniform with a = 0 and fan-in r (bound sqrt(6 / r)), A_U and B_V zero;
    ``init="lora"`` is this project's earlier choice: B_U and B_V zero, A_U and A_V
    Kaiming-uniform with a = sqrt(5) and fan-in k (bound 1 / sqrt(k)), as LoRA's A.

``spectralft_rot`` (rotational):
    W' = W_m + U_k R_U S_k R_V^T V_k^T,   R = (I - K)^-1 (I + K),  K = -K^T
    each rotation is the Cayley transform of a skew-symmetric K (k(k-1)/2 free values,
    zero at start, so R = I); k(k - 1) trainable values per matrix.

``keep_residual=False`` drops W_m (W' built on W_p alone), which is what the paper's released
code does; it changes the model before training and exists only for comparison.

Neither method ever forms W_m. With keep_residual, W' = W + dW where, for spectralft,
    dW = s B_U (A_U S V'^T) + s (U S A_V^T) B_V^T      (rank <= 2r, V' = V + s B_V A_V)
so the factored forward costs about a rank-2r LoRA; for spectralft_rot dW = U (R_U S R_V^T - S) V^T.
Reads and writes no files.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spectral.adapters.base import AdapterLayer, top_factors
from spectral.adapters.config import AdapterConfig


class _PrincipalSubspace(AdapterLayer):
    """Holds the frozen top-k factors (buffers U, S, V) and, when truncating, W_p."""

    def __init__(
        self, base_layer: nn.Linear, cfg: AdapterConfig, factors: dict[str, Tensor] | None, name: str
    ) -> None:
        super().__init__(base_layer, cfg)
        weight = base_layer.weight
        U, S, Vh = top_factors(weight, cfg.top_k, factors, name)
        self.top_k = cfg.top_k
        self.keep_residual = cfg.keep_residual
        like = dict(device=weight.device, dtype=weight.dtype)
        self.register_buffer("U", U.to(**like).contiguous())
        self.register_buffer("S", S.to(**like).contiguous())
        self.register_buffer("V", Vh.T.to(**like).contiguous())
        if not cfg.keep_residual:
            self.register_buffer("principal", ((U * S) @ Vh).to(**like).contiguous())

    def frozen_weight(self) -> Tensor:
        """W (residual kept) or W_p = U_k S_k V_k^T (released-code truncation)."""
        return self.base_layer.weight if self.keep_residual else self.principal

    def _base_costs(self, tokens: int, grad: bool) -> tuple[float, float]:
        """(factored, materialised) costs of the big product alone."""
        g = 1 if grad else 0
        big = float(tokens) * self.out_features * self.in_features
        return (1 + g) * big, (1 + 2 * g) * big


class SpectralFTLayer(_PrincipalSubspace):
    """``spectralft``: additive low-rank corrections B A of U_k and V_k (see module docstring)."""

    method = "spectralft"

    def __init__(
        self, base_layer: nn.Linear, cfg: AdapterConfig, factors: dict[str, Tensor] | None = None, name: str = ""
    ) -> None:
        super().__init__(base_layer, cfg, factors, name)
        m, n, r, k = self.out_features, self.in_features, cfg.rank, cfg.top_k
        self.rank = r
        like = dict(device=self.U.device, dtype=self.U.dtype)
        self.B_U = nn.Parameter(torch.zeros(m, r, **like))
        self.A_U = nn.Parameter(torch.zeros(r, k, **like))
        self.B_V = nn.Parameter(torch.zeros(n, r, **like))
        self.A_V = nn.Parameter(torch.zeros(r, k, **like))
        if cfg.init == "paper":
            # released code: dU = UA UB (UA m x r Kaiming, UB zero), dV^T = VhA VhB (VhA k x r
            # Kaiming, VhB zero); kaiming_uniform_ with a = 0 on an (x, r) tensor has fan-in r.
            nn.init.kaiming_uniform_(self.B_U, a=0.0)
            a_v_t = torch.empty(k, r, **like)
            nn.init.kaiming_uniform_(a_v_t, a=0.0)
            with torch.no_grad():
                self.A_V.copy_(a_v_t.T)
        else:
            nn.init.kaiming_uniform_(self.A_U, a=math.sqrt(5))
            nn.init.kaiming_uniform_(self.A_V, a=math.sqrt(5))

    def delta_factors(self) -> tuple[Tensor, Tensor]:
        """(L (m x 2r), R (2r x n)) with L @ R = U' S V'^T - U S V^T, the change of W."""
        s = self.scaling
        a_u_s = self.A_U * self.S  # r x k
        # P = A_U S V'^T with V' = V + s B_V A_V, without forming V' (n x k)
        p = a_u_s @ self.V.T + s * ((a_u_s @ self.A_V.T) @ self.B_V.T)  # r x n
        q = (self.U * self.S) @ self.A_V.T  # m x r:  U S A_V^T
        left = torch.cat([s * self.B_U, q], dim=1)
        right = torch.cat([p, s * self.B_V.T], dim=0)
        return left, right

    def adapted_weight(self) -> Tensor:
        left, right = self.delta_factors()
        return self.frozen_weight() + left @ right

    def _forward_factored(self, x: Tensor) -> Tensor:
        left, right = self.delta_factors()
        y = F.linear(x, self.frozen_weight(), self.base_layer.bias)
        return y + F.linear(F.linear(self.adapter_dropout(x), right), left)

    def _costs(self, tokens: int, grad: bool) -> tuple[float, float]:
        m, n, r, k = self.out_features, self.in_features, self.rank, self.top_k
        mult = 3 if grad else 1
        setup = float(r) * k * (n + m + r) + float(r) * r * n
        big_f, big_m = self._base_costs(tokens, grad)
        factored = big_f + mult * (setup + float(tokens) * 2 * r * (m + n))
        materialised = big_m + mult * (setup + 2.0 * r * m * n)
        return factored, materialised


def cayley(params: Tensor, k: int) -> Tensor:
    """The orthogonal k x k matrix (I - K)^-1 (I + K), K skew-symmetric from its upper triangle.

    ``params`` holds the k(k-1)/2 strictly-upper-triangular entries of K, row-major; zero
    gives the identity.
    """
    rows, cols = torch.triu_indices(k, k, offset=1, device=params.device)
    upper = torch.zeros(k, k, device=params.device, dtype=params.dtype).index_put((rows, cols), params)
    skew = upper - upper.T
    eye = torch.eye(k, device=params.device, dtype=params.dtype)
    return torch.linalg.solve(eye - skew, eye + skew)


class SpectralRotLayer(_PrincipalSubspace):
    """``spectralft_rot``: Cayley-parameterised rotations of U_k and V_k (see module docstring)."""

    method = "spectralft_rot"

    def __init__(
        self, base_layer: nn.Linear, cfg: AdapterConfig, factors: dict[str, Tensor] | None = None, name: str = ""
    ) -> None:
        super().__init__(base_layer, cfg, factors, name)
        k = cfg.top_k
        like = dict(device=self.U.device, dtype=self.U.dtype)
        self.skew_U = nn.Parameter(torch.zeros(k * (k - 1) // 2, **like))
        self.skew_V = nn.Parameter(torch.zeros(k * (k - 1) // 2, **like))

    def core_delta(self) -> Tensor:
        """The k x k matrix R_U S R_V^T - S, so that W' - W_frozen = U (that) V^T."""
        k = self.top_k
        rot_u = cayley(self.skew_U, k)
        rot_v = cayley(self.skew_V, k)
        return (rot_u * self.S) @ rot_v.T - torch.diag(self.S)

    def adapted_weight(self) -> Tensor:
        return self.frozen_weight() + (self.U @ self.core_delta()) @ self.V.T

    def _forward_factored(self, x: Tensor) -> Tensor:
        y = F.linear(x, self.frozen_weight(), self.base_layer.bias)
        z = F.linear(F.linear(self.adapter_dropout(x), self.V.T), self.core_delta())
        return y + F.linear(z, self.U)

    def _costs(self, tokens: int, grad: bool) -> tuple[float, float]:
        m, n, k = self.out_features, self.in_features, self.top_k
        mult = 3 if grad else 1
        setup = 5.0 * k**3
        big_f, big_m = self._base_costs(tokens, grad)
        factored = big_f + mult * (setup + float(tokens) * k * (m + n + k))
        materialised = big_m + mult * (setup + float(m) * k * k + float(m) * k * n)
        return factored, materialised
