"""Correctness of every adapter method, table-driven over shapes (square and not) and ranks.

Pins down what the paper's released code gets wrong: the adapted model equals the
pre-trained one at initialisation, gradients reach every adapter tensor, one optimiser step
changes the output; plus parameter counts, merging, both forward paths and save/load.
"""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from adapter_models import make_backbone, perturb_adapters
from spectral.adapters import (
    AdapterConfig,
    AdapterLayer,
    SpectralFTLayer,
    adapter_layers,
    adapter_state_dict,
    apply_adapters,
    count_trainable,
    load_adapters,
    merge_adapters,
)

# (m, n) = (out, in) of q_proj and k_proj
SHAPES = [(16, 16), (24, 12), (12, 24)]
# (rank r, top_k k); k <= min(m, n) = 12 for every shape
RANKS = [(2, 6), (4, 10)]
METHODS = ["spectralft", "spectralft_rot", "lora", "pissa", "milora", "dora", "full", "frozen"]
WRAPPING = [m for m in METHODS if m != "frozen"]
WITH_PATHS = [m for m in METHODS if m not in ("full", "frozen")]
CASES = [(method, shape, rk) for method in METHODS for shape in SHAPES for rk in RANKS]
IDS = [f"{m}-{s[0]}x{s[1]}-r{rk[0]}k{rk[1]}" for m, s, rk in CASES]

#: Adapter tensors whose gradient is exactly zero at the first step, by construction: their
#: partner starts at zero, so e.g. dL/dA = B^T (...) = 0 (as in LoRA). They must move from step 2.
#: spectralft's default (paper) init: A_U and B_V start at zero, so B_U and A_V get no gradient.
ZERO_GRAD_AT_INIT = {"spectralft": {"B_U", "A_V"}, "lora": {"A"}, "dora": {"A"}}


def trainable_formula(method: str, m: int, n: int, r: int, k: int, bias: bool = True) -> int:
    """Trainable values of one m x n matrix, written out independently of the library."""
    return {
        "spectralft": r * (m + k) + r * (n + k),
        "spectralft_rot": k * (k - 1),
        "lora": r * (m + n),
        "pissa": r * (m + n),
        "milora": r * (m + n),
        "dora": r * (m + n) + m,
        "full": m * n + (m if bias else 0),
        "frozen": 0,
    }[method]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach() - b.detach()).norm() / b.detach().norm())


def adapted(method, shape, rk, seed=0, **kw):
    model = make_backbone(*shape, seed=seed)
    cfg = AdapterConfig(method=method, rank=rk[0], top_k=rk[1], **kw)
    return apply_adapters(model, cfg)


def inputs(n: int, tokens: int = 7, seed: int = 5) -> torch.Tensor:
    return torch.randn(2, tokens, n, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("method,shape,rk", CASES, ids=IDS)
def test_output_equals_base_model_at_initialisation(method, shape, rk):
    x = inputs(shape[1])
    base = make_backbone(*shape)(x)
    model = adapted(method, shape, rk)
    for path in ("factored", "materialised"):
        for layer in adapter_layers(model).values():
            layer.path = path
        assert rel(model(x), base) <= 1e-5, path


@pytest.mark.parametrize("method,shape,rk", CASES, ids=IDS)
def test_every_adapter_tensor_gets_a_gradient_and_a_step_changes_the_output(method, shape, rk):
    x = inputs(shape[1])
    model = adapted(method, shape, rk)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if method == "frozen":
        assert params == {}
        return
    zero_at_init = ZERO_GRAD_AT_INIT.get(method, set())
    model(x).pow(2).sum().backward()
    for name, p in params.items():
        short = name.rsplit(".", 1)[-1]
        if short in zero_at_init:
            assert p.grad is not None and torch.count_nonzero(p.grad) == 0, name
        else:
            assert p.grad is not None and torch.count_nonzero(p.grad) > 0, name
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert p.grad is None, f"frozen {name} received a gradient"
    before = model(x).detach()
    opt = torch.optim.SGD(params.values(), lr=0.05)
    opt.step()
    opt.zero_grad()
    after = model(x)
    assert rel(after.detach(), before) > 1e-4
    after.pow(2).sum().backward()
    for name, p in params.items():
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0, f"{name} has no gradient after one step"


@pytest.mark.parametrize("method,shape,rk", CASES, ids=IDS)
def test_trainable_count_equals_the_formula(method, shape, rk):
    model = adapted(method, shape, rk)
    m, n = shape
    if method == "full":  # the whole model: q_proj, k_proj and the 3 x m head
        assert count_trainable(model) == 2 * trainable_formula(method, m, n, *rk) + 3 * m + 3
    else:
        assert count_trainable(model) == 2 * trainable_formula(method, m, n, *rk)
    assert sum(t.numel() for t in adapter_state_dict(model).values()) == count_trainable(model)


def paper_shaped_layer() -> SpectralFTLayer:
    """A 1024 x 1024 SpectralFT layer, k = 256, r = 16, on a weight whose factors are known
    (so the test needs no 1024 x 1024 SVD)."""
    gen = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(1024, 256, generator=gen))
    v, _ = torch.linalg.qr(torch.randn(1024, 256, generator=gen))
    s = torch.linspace(2.0, 0.1, 256)
    lin = nn.Linear(1024, 1024)
    with torch.no_grad():
        lin.weight.copy_((u * s) @ v.T)
    factors = {"U": u, "S": s, "Vh": v.T.contiguous()}
    return SpectralFTLayer(lin, AdapterConfig(method="spectralft", rank=16, top_k=256), factors, "q_proj")


def test_paper_setting_has_1_97_million_trainable_values():
    # WavLM-Large: q and k of 24 layers, 1024 x 1024, k = 256, r = 16
    per_matrix = trainable_formula("spectralft", 1024, 1024, 16, 256)
    layer = paper_shaped_layer()
    assert sum(p.numel() for p in layer.adapter_parameters().values()) == per_matrix
    assert 48 * per_matrix == 1_966_080
    # the spectralft forward at this shape trains in the factored path at any token count
    for tokens in (1, 300, 128 * 150):
        assert layer.choose_path(torch.zeros(tokens, 1, 1024)) == "factored"


@pytest.mark.parametrize("method,shape,rk", CASES, ids=IDS)
def test_merged_model_equals_unmerged(method, shape, rk):
    x = inputs(shape[1])
    model = adapted(method, shape, rk)
    perturb_adapters(model)
    with torch.no_grad():
        unmerged = model(x)
        merge_adapters(model)
        merged = model(x)
    assert not adapter_layers(model)
    assert all(type(mod) in (nn.Linear,) for name, mod in model.named_children())
    assert rel(merged, unmerged) <= 1e-4


@pytest.mark.parametrize("method,shape,rk", CASES, ids=IDS)
def test_saved_adapter_state_reproduces_outputs_in_a_fresh_model(method, shape, rk):
    x = inputs(shape[1])
    model = adapted(method, shape, rk)
    perturb_adapters(model)
    buffer = io.BytesIO()
    torch.save(adapter_state_dict(model), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    fresh = adapted(method, shape, rk)
    load_adapters(fresh, state)
    with torch.no_grad():
        assert torch.allclose(fresh(x), model(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("method", WITH_PATHS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_factored_and_materialised_paths_agree_in_output_and_gradient(method, shape):
    x = inputs(shape[1])
    results = {}
    for path in ("factored", "materialised"):
        model = adapted(method, shape, (3, 8))
        perturb_adapters(model)
        for layer in adapter_layers(model).values():
            layer.path = path
        x_ = x.clone().requires_grad_(True)
        out = model(x_)
        out.pow(2).sum().backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
        results[path] = (out.detach(), grads, x_.grad)
    (out_f, g_f, xg_f), (out_m, g_m, xg_m) = results["factored"], results["materialised"]
    assert rel(out_f, out_m) <= 1e-5
    assert rel(xg_f, xg_m) <= 1e-5
    for name in g_f:
        assert rel(g_f[name], g_m[name]) <= 1e-4, name


@pytest.mark.parametrize("method", WITH_PATHS)
def test_auto_path_materialises_for_many_tokens_without_gradient(method):
    layer = adapted(method, (64, 64), (2, 8)).q_proj
    assert isinstance(layer, AdapterLayer)
    with torch.no_grad():
        assert layer.choose_path(torch.zeros(1, 64)) == "factored"
        assert layer.choose_path(torch.zeros(4096, 64)) == "materialised"
    # training with few tokens never pays for materialising W' (and its m x n gradient)
    assert layer.choose_path(torch.zeros(1, 64)) == "factored"


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_keep_residual_false_truncates_to_the_top_k_like_the_released_code(shape):
    x = inputs(shape[1])
    k = 6
    model = adapted("spectralft", shape, (2, k), keep_residual=False)
    truncated = make_backbone(*shape)
    with torch.no_grad():
        for proj in (truncated.q_proj, truncated.k_proj):
            u, s, vh = torch.linalg.svd(proj.weight.double(), full_matrices=False)
            proj.weight.copy_((u[:, :k] * s[:k]) @ vh[:k])
        assert rel(model(x), truncated(x)) <= 1e-5
        assert rel(model(x), make_backbone(*shape)(x)) > 1e-3


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_rotational_variant_keeps_the_singular_values_of_the_principal_part(shape):
    k = 8
    model = adapted("spectralft_rot", shape, (2, k))
    perturb_adapters(model, scale=0.3)
    layer = model.q_proj
    with torch.no_grad():
        principal = layer.adapted_weight().double() - (layer.base_layer.weight.double() - (layer.U.double() * layer.S.double()) @ layer.V.double().T)
        values = torch.linalg.svdvals(principal)[:k]
    assert torch.allclose(values, layer.S.double(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", ["spectralft", "lora", "dora", "spectralft_rot"])
def test_dropout_acts_on_the_adapter_branch_only_in_training(method):
    x = inputs(16)
    model = adapted(method, (16, 16), (2, 6), dropout=0.5)
    base = make_backbone(16, 16)(x)
    model.train()
    assert rel(model(x), base) <= 1e-5  # at start the adapter branch is zero, dropped or not
    perturb_adapters(model)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    noisy = model(x)
    torch.manual_seed(1)
    assert not torch.allclose(noisy, model(x))
    model.q_proj.path = "materialised"
    with pytest.raises(RuntimeError, match="dropout"):
        model(x)


def test_methods_preserve_a_missing_bias():
    x = inputs(12)
    for method in WRAPPING:
        model = apply_adapters(make_backbone(12, 12, bias=False), AdapterConfig(method=method, rank=2, top_k=4))
        perturb_adapters(model)
        with torch.no_grad():
            unmerged = model(x)
            assert rel(merge_adapters(model)(x), unmerged) <= 1e-4
        assert model.q_proj.bias is None


@pytest.mark.parametrize("init", ["paper", "lora"])
def test_spectralft_init_matches_the_released_code_or_the_lora_option(init):
    """paper: B_U, A_V ~ U(+-sqrt(6/r)) (Kaiming, a = 0, fan-in r), A_U = B_V = 0 (ptm.py);
    lora: A_U, A_V ~ U(+-1/sqrt(k)) (a = sqrt(5), fan-in k), B_U = B_V = 0."""
    m, n, r, k = 96, 80, 4, 64
    torch.manual_seed(0)
    layer = adapter_layers(apply_adapters(make_backbone(m, n, seed=0),
                                          AdapterConfig(method="spectralft", rank=r, top_k=k, init=init)))
    layer = next(iter(layer.values()))
    if init == "paper":
        nonzero, zero, bound = ("B_U", "A_V"), ("A_U", "B_V"), math.sqrt(6 / r)
    else:
        nonzero, zero, bound = ("A_U", "A_V"), ("B_U", "B_V"), 1 / math.sqrt(k)
    for name in zero:
        assert torch.count_nonzero(getattr(layer, name)) == 0, name
    for name in nonzero:
        t = getattr(layer, name).detach()
        assert float(t.abs().max()) <= bound
        # a uniform sample of this size reaches beyond 90 % of its bound and has the uniform's std
        assert float(t.abs().max()) > 0.9 * bound, name
        assert abs(float(t.std()) - bound / math.sqrt(3)) < 0.1 * bound / math.sqrt(3), name


def test_spectralft_init_is_checked():
    with pytest.raises(ValueError, match="init must be one of paper, lora"):
        AdapterConfig(method="spectralft", init="kaiming")
