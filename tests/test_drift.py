"""Drift measures (spectral.drift) with known answers: inside-span, random, rotated and frozen updates."""

from __future__ import annotations

import math

import pytest
import torch

from spectral.adapters import AdapterConfig
from spectral.adapters.decompose import decompose
from spectral.adapters.spectralft import SpectralRotLayer
from spectral.drift import MEASURES, drift_of_weights, matrix_drift, summarise, tsv_text


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _weight(m: int, n: int, seed: int = 0) -> torch.Tensor:
    """A float64 matrix with a decaying, well-separated spectrum (a unique top-k subspace for every k)."""
    g = torch.Generator().manual_seed(seed)
    p = min(m, n)
    U, _ = torch.linalg.qr(torch.randn(m, p, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, p, generator=g, dtype=torch.float64))
    s = torch.logspace(1, -1, p, dtype=torch.float64)
    return (U * s) @ V.T


def test_update_inside_the_top_k_block_has_share_one_and_keeps_the_subspaces():
    w = _weight(40, 30)
    k = 6
    f = decompose(w, k)
    U, V = f["U"], f["Vh"].T
    g = torch.Generator().manual_seed(1)
    core = 0.3 * torch.randn(k, k, generator=g, dtype=torch.float64)
    d = matrix_drift(w, w + U @ core @ V.T, k)
    assert d["updated"] is True
    assert d["share_block"] == pytest.approx(1.0, abs=1e-10)
    for key in ("share_left", "share_right", "share_outside"):
        assert d[key] == pytest.approx(0.0, abs=1e-10)
    # W' keeps span(U_k) x span(V_k) as an invariant pair, so its top-k subspaces are those of W
    assert d["cos2_mean_left"] == pytest.approx(1.0, abs=1e-9)
    assert d["cos2_mean_right"] == pytest.approx(1.0, abs=1e-9)
    assert d["angle_max_left_deg"] < 1e-3 and d["angle_max_right_deg"] < 1e-3
    assert d["sv_change_rest"] == pytest.approx(0.0, abs=1e-12)
    assert d["delta_rank"] == k


def test_random_rank_r_update_puts_k2_over_mn_in_the_block():
    m, n, k, r = 120, 90, 30, 4
    w = _weight(m, n)
    f = decompose(w, k)
    g = torch.Generator().manual_seed(2)
    shares = {key: [] for key in ("share_block", "share_left", "share_right", "share_outside")}
    for _ in range(20):
        delta = torch.randn(m, r, generator=g, dtype=torch.float64) @ torch.randn(r, n, generator=g, dtype=torch.float64)
        d = matrix_drift(w, w + 0.01 * delta, k, factors=f)
        assert d["delta_rank"] == r
        for key in shares:
            shares[key].append(d[key])
    mean = {key: sum(v) / len(v) for key, v in shares.items()}
    want = {
        "share_block": k * k / (m * n),
        "share_left": k * (n - k) / (m * n),
        "share_right": (m - k) * k / (m * n),
        "share_outside": (m - k) * (n - k) / (m * n),
    }
    for key in want:
        assert mean[key] == pytest.approx(want[key], rel=0.15), (key, mean[key], want[key])
    assert sum(mean.values()) == pytest.approx(1.0, abs=1e-9)


def test_orthogonal_rotation_of_the_top_k_vectors_leaves_the_singular_values_unchanged():
    torch.manual_seed(3)
    base = torch.nn.Linear(24, 32).double()
    layer = SpectralRotLayer(base, AdapterConfig(method="spectralft_rot", top_k=8))
    with torch.no_grad():
        layer.skew_U.normal_(0.0, 0.3)
        layer.skew_V.normal_(0.0, 0.3)
    w = base.weight.detach()
    w_rot = layer.adapted_weight().detach()
    d = matrix_drift(w, w_rot, 8)
    assert d["rel_update"] > 0.05  # it did move W
    assert d["sv_change_top"] == pytest.approx(0.0, abs=1e-10)
    assert d["sv_change_rest"] == pytest.approx(0.0, abs=1e-10)
    assert d["share_block"] == pytest.approx(1.0, abs=1e-10)  # U_k R S R^T V_k^T - U_k S V_k^T
    assert d["cos2_mean_left"] == pytest.approx(1.0, abs=1e-9)  # the span is kept, the vectors turn


def test_frozen_matrix_is_reported_as_no_update_not_nan():
    w = _weight(20, 20).float()
    d = matrix_drift(w, w.clone(), 5)
    assert d["updated"] is False
    for key in MEASURES:
        value = float(d[key])
        assert not math.isnan(value), key
    assert d["delta_rank"] == 0 and d["rel_update"] == 0.0
    assert d["share_block"] == d["share_left"] == d["share_right"] == d["share_outside"] == 0.0
    assert d["cos2_mean_left"] == pytest.approx(1.0, abs=1e-6) and d["sv_change_top"] == 0.0
    rows = drift_of_weights({"layers.0.q_proj": w}, {"layers.0.q_proj": w.clone()}, 5, targets=["q_proj"])
    s = summarise(rows)
    assert s["updated"] == 0 and s["share_outside"] == 0.0
    assert "nan" not in tsv_text(rows).lower()
    assert tsv_text(rows).splitlines()[1].split("\t")[6] == "no"


def test_float32_rounding_does_not_count_as_rank():
    w = _weight(64, 48).float()
    w64 = w.double()
    g = torch.Generator().manual_seed(4)
    delta = 1e-3 * torch.randn(64, 2, generator=g, dtype=torch.float64) @ torch.randn(2, 48, generator=g, dtype=torch.float64)
    w_new = (w64 + delta).float()  # merged weights are stored in float32
    assert matrix_drift(w, w_new, 8)["delta_rank"] == 2


def test_precomputed_factors_give_the_same_answer_as_decomposing():
    w = _weight(30, 50)
    g = torch.Generator().manual_seed(5)
    w_new = w + 0.05 * torch.randn(30, 50, generator=g, dtype=torch.float64)
    a = matrix_drift(w, w_new, 7)
    b = matrix_drift(w, w_new, 7, factors=decompose(w, 10, method="lowrank", niter=8))
    for key in MEASURES:
        assert float(a[key]) == pytest.approx(float(b[key]), abs=1e-6), key


def test_rows_carry_layer_kind_target_and_k_capped_at_the_matrix():
    w = {"encoder.layers.1.attention.q_proj": _weight(8, 8), "encoder.layers.1.feed_forward.output_dense": _weight(8, 16)}
    new = {name: value + 0.1 for name, value in w.items()}
    rows = drift_of_weights(w, new, 12, targets=["q_proj"])
    q, ff = rows["encoder.layers.1.attention.q_proj"], rows["encoder.layers.1.feed_forward.output_dense"]
    assert (q["layer"], q["kind"], q["target"], q["k"]) == (1, "q_proj", True, 8)
    assert (ff["kind"], ff["target"], ff["shape"]) == ("output_dense", False, [8, 16])
    assert summarise(rows)["matrices"] == 1  # the targets only
    with pytest.raises(ValueError, match="lack"):
        drift_of_weights(w, {"encoder.layers.1.attention.q_proj": w["encoder.layers.1.attention.q_proj"]}, 4)


def test_numerical_rank_from_the_gram_matrix_agrees_with_the_singular_values():
    from spectral.drift import numerical_rank

    g = torch.Generator().manual_seed(6)
    w = _weight(80, 60).float()
    for r in (1, 5, 20):
        d = (w.double() + torch.randn(80, r, generator=g, dtype=torch.float64) @ torch.randn(r, 60, generator=g, dtype=torch.float64) * 1e-2).float().double() - w.double()
        tol = 80 * torch.finfo(torch.float32).eps * float(torch.linalg.svdvals(w.double())[0])
        assert numerical_rank(d, tol) == int((torch.linalg.svdvals(d) > tol).sum()) == r
