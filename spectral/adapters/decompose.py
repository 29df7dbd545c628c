"""Singular value decomposition of one weight matrix, as the adapters and the svd stage use it.

:func:`decompose` returns the factors in a plain dict of tensors (the format of one entry of
``factors.pt``, see :mod:`spectral.svd`), with a canonical sign per singular triplet so the
same weight always yields the same factors, whichever process computed them.  Reads and
writes no files.

Factor dict of a weight W (m x n), p = min(m, n):

    U         (m, k)  leading left singular vectors
    S         (p,)    all singular values, descending ("full"); (k,) for "lowrank"
    Vh        (k, n)  leading right singular vectors, as rows
    U_bottom  (m, b)  trailing left singular vectors   (only when bottom = b > 0)
    Vh_bottom (b, n)  trailing right singular vectors  (their values are S[-b:])
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Ways to compute the decomposition.
SVD_METHODS: tuple[str, ...] = ("full", "gram", "lowrank")


def canonical_signs(U: Tensor, Vh: Tensor) -> tuple[Tensor, Tensor]:
    """Flip each singular pair (u_i, v_i) so that the largest-magnitude entry of u_i is positive.

    Takes U (m, j) and Vh (j, n) of the same triplets; returns new tensors. The product
    U diag(S) Vh is unchanged; the result no longer depends on the LAPACK build.
    """
    if U.shape[1] == 0:
        return U, Vh
    rows = U.abs().argmax(dim=0)
    signs = torch.sign(U[rows, torch.arange(U.shape[1], device=U.device)])
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    return U * signs, Vh * signs[:, None]


def decompose(
    weight: Tensor,
    top_k: int,
    *,
    bottom: int = 0,
    method: str = "full",
    oversample: int = 10,
    niter: int = 4,
    seed: int = 0,
    compute_dtype: torch.dtype = torch.float64,
) -> dict[str, Tensor]:
    """Decompose ``weight`` (m x n) into its top ``top_k`` (and bottom ``bottom``) singular triplets.

    ``method="full"`` runs LAPACK's complete SVD (gesdd) in ``compute_dtype`` (float64 by
    default). ``method="gram"`` is exact too but about twice as fast: the symmetric
    eigendecomposition of the smaller Gram matrix (W W^T or W^T W) in ``compute_dtype``, the
    other side's top-k vectors recovered as W^T u_i / s_i. Squaring makes the error of s_i
    about eps64 s_1^2 / s_i, below the float32 rounding of the weights themselves
    (eps32 s_1) for every s_i above ~1e-9 s_1; it gives no bottom triplets.
    ``method="lowrank"`` runs the randomised range finder of Halko et al.
    (``torch.svd_lowrank``) with ``top_k + oversample`` columns and ``niter`` power
    iterations, seeded by ``seed``; it cannot give bottom triplets and returns only the
    top-k singular values. Returns the factor dict described in the module docstring, in
    ``compute_dtype``. Raises ValueError when k or b exceed min(m, n).
    """
    if weight.dim() != 2:
        raise ValueError(f"expected a 2-D weight matrix, got shape {tuple(weight.shape)}")
    if method not in SVD_METHODS:
        raise ValueError(f"unknown SVD method {method!r}; expected one of {', '.join(SVD_METHODS)}")
    m, n = weight.shape
    p = min(m, n)
    if not 1 <= top_k <= p:
        raise ValueError(f"top_k={top_k} is outside 1..min(m, n)={p} for a {m}x{n} matrix")
    if not 0 <= bottom <= p:
        raise ValueError(f"bottom={bottom} is outside 0..min(m, n)={p} for a {m}x{n} matrix")
    w = weight.detach().to(compute_dtype)
    out: dict[str, Tensor] = {}
    if method == "full":
        if m < n:  # LAPACK is markedly faster on tall matrices: decompose W^T = V S U^T
            V, S, Uh = torch.linalg.svd(w.T, full_matrices=False)
            U, Vh = Uh.T, V.T
        else:
            U, S, Vh = torch.linalg.svd(w, full_matrices=False)
        top_u, top_vh = canonical_signs(U[:, :top_k], Vh[:top_k])
        out.update(U=top_u.contiguous(), S=S.contiguous(), Vh=top_vh.contiguous())
        if bottom:
            bot_u, bot_vh = canonical_signs(U[:, p - bottom :], Vh[p - bottom :])
            out.update(U_bottom=bot_u.contiguous(), Vh_bottom=bot_vh.contiguous())
        return out
    if bottom:
        raise ValueError(f"the {method} method finds only the top triplets; use method='full' for bottom > 0")
    if method == "gram":
        wide = m <= n
        gram = w @ w.T if wide else w.T @ w
        evals, evecs = torch.linalg.eigh(gram)
        S = evals.flip(0).clamp_min(0).sqrt()
        side = evecs.flip(1)[:, :top_k]
        if float(S[top_k - 1]) <= float(S[0]) * 1e-6:
            raise ValueError(
                f"the {m}x{n} matrix has numerical rank below top_k={top_k}; use method='full'"
            )
        other = (side.T @ w if wide else w @ side) / (S[:top_k, None] if wide else S[None, :top_k])
        top_u, top_vh = canonical_signs(side, other) if wide else canonical_signs(other, side.T)
        out.update(U=top_u.contiguous(), S=S.contiguous(), Vh=top_vh.contiguous())
        return out
    q = min(top_k + max(oversample, 0), p)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        U, S, V = torch.svd_lowrank(w, q=q, niter=niter)
    top_u, top_vh = canonical_signs(U[:, :top_k], V[:, :top_k].T)
    out.update(U=top_u.contiguous(), S=S[:top_k].contiguous(), Vh=top_vh.contiguous())
    return out


def check_factors(weight: Tensor, factors: dict[str, Tensor], top_k: int, bottom: int, name: str) -> None:
    """Check that ``factors`` hold at least ``top_k``/``bottom`` triplets of exactly ``weight``.

    Verifies shapes and that u_i^T W v_i reproduces s_i for the leading triplets (a cheap
    test that catches factors of another checkpoint). Raises ValueError naming ``name``.
    """
    m, n = weight.shape
    for key in ("U", "S", "Vh"):
        if key not in factors:
            raise ValueError(f"factors of {name!r} lack {key!r} (they hold {sorted(factors)})")
    U, S, Vh = factors["U"], factors["S"], factors["Vh"]
    if U.dim() != 2 or U.shape[0] != m or Vh.dim() != 2 or Vh.shape[1] != n:
        raise ValueError(
            f"factors of {name!r} have U {tuple(U.shape)} and Vh {tuple(Vh.shape)}, "
            f"which do not fit its {m}x{n} weight"
        )
    have = min(U.shape[1], Vh.shape[0], S.shape[0])
    if have < top_k:
        raise ValueError(f"factors of {name!r} hold {have} leading triplets, but {top_k} are needed")
    if bottom:
        if "U_bottom" not in factors or "Vh_bottom" not in factors:
            raise ValueError(
                f"factors of {name!r} hold no bottom triplets, but {bottom} are needed "
                "(rerun the svd stage with --bottom)"
            )
        have_b = factors["U_bottom"].shape[1]
        if have_b < bottom or S.shape[0] < min(m, n):
            raise ValueError(f"factors of {name!r} hold {have_b} trailing triplets, but {bottom} are needed")
    probe = min(4, top_k)
    w = weight.detach().to(torch.float64)
    u = U[:, :probe].to(w)
    v = Vh[:probe].to(w)
    got = torch.einsum("mi,mn,in->i", u, w, v)
    want = S[:probe].to(w)
    tol = 1e-3 * float(S[0]) + 1e-6
    if (got - want).abs().max().item() > tol:
        raise ValueError(
            f"factors of {name!r} do not decompose its weight (u^T W v = {got.tolist()} but "
            f"s = {want.tolist()}); were they computed from another checkpoint?"
        )
