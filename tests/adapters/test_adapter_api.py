"""The configuration checks and the model-level API: matching, freezing, factors, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adapter_models import make_backbone, perturb_adapters
from spectral.adapters import (
    METHODS,
    AdapterConfig,
    adapter_layers,
    adapter_state_dict,
    apply_adapters,
    decompose,
    find_targets,
    load_adapters,
    matches_target,
    merge_adapters,
)


@pytest.mark.parametrize(
    "kwargs,quoted",
    [
        ({"method": "lorra"}, "'lorra'"),
        ({"rank": 0}, "0"),
        ({"rank": 2.5}, "2.5"),
        ({"top_k": -3}, "-3"),
        ({"alpha": -1.0}, "-1.0"),
        ({"dropout": 1.0}, "1.0"),
        ({"targets": "q_proj"}, "'q_proj'"),
        ({"targets": []}, "empty"),
        ({"targets": ["q_proj("]}, "'q_proj('"),
        ({"method": "lora", "keep_residual": False}, "'lora'"),
        ({"keep_residual": "yes"}, "'yes'"),
    ],
)
def test_config_rejects_bad_values_quoting_them(kwargs, quoted):
    with pytest.raises(ValueError) as err:
        AdapterConfig(**kwargs)
    assert quoted in str(err.value)


def test_config_fields_all_have_help_and_round_trip():
    helps = AdapterConfig.field_help()
    assert set(helps) == {"method", "targets", "rank", "top_k", "alpha", "dropout", "keep_residual", "init"}
    assert all(len(text) > 20 for text in helps.values())
    cfg = AdapterConfig(method="pissa", rank=4, alpha=8)
    assert AdapterConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.scaling == 2.0
    assert AdapterConfig().scaling == 1.0
    with pytest.raises(ValueError, match="'rnk'"):
        AdapterConfig.from_dict({"rnk": 3})
    assert set(METHODS) == {"spectralft", "spectralft_rot", "lora", "pissa", "milora", "dora", "full", "frozen"}


def test_target_patterns_match_suffixes_and_regular_expressions():
    assert matches_target("encoder.layers.3.attention.q_proj", ["q_proj"])
    assert not matches_target("encoder.layers.3.attention.xq_proj", ["q_proj"])
    assert matches_target("encoder.layers.1.attention.k_proj", [r"encoder\.layers\.(0|1)\..*k_proj"])
    assert not matches_target("encoder.layers.2.attention.k_proj", [r"encoder\.layers\.(0|1)\..*k_proj"])


def test_apply_wraps_only_matches_and_freezes_the_rest():
    model = make_backbone(12, 10)
    apply_adapters(model, AdapterConfig(method="lora", rank=2, top_k=4))
    assert set(adapter_layers(model)) == {"q_proj", "k_proj"}
    assert isinstance(model.head, nn.Linear) and not model.head.weight.requires_grad
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"q_proj.A", "q_proj.B", "k_proj.A", "k_proj.B"}


def test_apply_raises_when_nothing_matches_and_lists_the_linear_layers():
    with pytest.raises(ValueError, match=r"no nn.Linear module matches targets \['query'\].*q_proj"):
        apply_adapters(make_backbone(8, 8), AdapterConfig(targets=["query"], rank=2, top_k=4))


def test_apply_twice_is_refused():
    model = apply_adapters(make_backbone(8, 8), AdapterConfig(method="lora", rank=2))
    with pytest.raises(ValueError, match="already holds adapters"):
        apply_adapters(model, AdapterConfig(method="lora", rank=2))


def test_top_k_larger_than_the_matrix_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"top_k/rank 9 exceeds min\(m, n\) = 8 of 'q_proj' \(12x8\)"):
        apply_adapters(make_backbone(12, 8), AdapterConfig(rank=2, top_k=9))


@pytest.mark.parametrize("method", ["spectralft", "spectralft_rot", "pissa", "milora"])
def test_precomputed_factors_give_the_same_model_as_decomposing_again(method):
    x = torch.randn(3, 12)
    cfg = AdapterConfig(method=method, rank=3, top_k=6)
    plain = make_backbone(12, 12)
    torch.manual_seed(7)
    apply_adapters(plain, cfg)
    base = make_backbone(12, 12)
    factors = {
        name: {k: v.float() for k, v in decompose(base.get_submodule(name).weight, 10, bottom=4).items()}
        for name in ("q_proj", "k_proj")
    }
    torch.manual_seed(7)
    given = apply_adapters(base, cfg, factors=factors)
    for model in (plain, given):
        perturb_adapters(model)
    with torch.no_grad():
        assert torch.allclose(plain(x), given(x), rtol=1e-5, atol=1e-6)


def test_factors_of_another_weight_or_missing_are_refused():
    cfg = AdapterConfig(method="spectralft", rank=2, top_k=4)
    other = make_backbone(12, 12, seed=3)
    wrong = {n: decompose(other.get_submodule(n).weight, 4) for n in ("q_proj", "k_proj")}
    with pytest.raises(ValueError, match="another checkpoint"):
        apply_adapters(make_backbone(12, 12), cfg, factors=wrong)
    with pytest.raises(ValueError, match="no entry for 1 matched module"):
        apply_adapters(make_backbone(12, 12), cfg, factors={"q_proj": wrong["q_proj"]})
    short = {n: decompose(make_backbone(12, 12).get_submodule(n).weight, 2) for n in ("q_proj", "k_proj")}
    with pytest.raises(ValueError, match="hold 2 leading triplets, but 4 are needed"):
        apply_adapters(make_backbone(12, 12), cfg, factors=short)
    with pytest.raises(ValueError, match="no bottom triplets"):
        apply_adapters(make_backbone(12, 12), AdapterConfig(method="milora", rank=2), factors=short)


def test_load_adapters_is_strict_about_keys_and_shapes():
    model = apply_adapters(make_backbone(8, 8), AdapterConfig(method="lora", rank=2))
    state = adapter_state_dict(model)
    with pytest.raises(ValueError, match="missing"):
        load_adapters(model, {k: v for k, v in state.items() if not k.startswith("q_proj")})
    with pytest.raises(ValueError, match="unexpected"):
        load_adapters(model, {**state, "v_proj.A": state["q_proj.A"]})
    with pytest.raises(ValueError, match="shape"):
        load_adapters(model, {**state, "q_proj.A": torch.zeros(3, 8)})


def test_frozen_trains_nothing_and_full_trains_every_parameter_whatever_the_targets():
    frozen = apply_adapters(make_backbone(8, 8), AdapterConfig(method="frozen"))
    assert not any(p.requires_grad for p in frozen.parameters())
    assert adapter_state_dict(frozen) == {}
    every = {n for n, _ in make_backbone(8, 8).named_parameters()}
    for targets in (["q_proj", "k_proj"], ["no_such_layer"]):
        full = apply_adapters(make_backbone(8, 8), AdapterConfig(method="full", targets=targets))
        assert not adapter_layers(full) and all(p.requires_grad for p in full.parameters())
        assert set(adapter_state_dict(full)) == every
    with pytest.raises(ValueError, match="already holds adapters"):
        apply_adapters(full, AdapterConfig(method="lora", rank=2))
    merge_adapters(full)
    assert not any(p.requires_grad for p in full.parameters()) and adapter_state_dict(full) == {}


def test_decompose_is_canonical_and_gram_and_lowrank_find_the_same_subspace():
    torch.manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(40, 30, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(30, 30, dtype=torch.float64))
    s = torch.logspace(0, -3, 30, dtype=torch.float64)
    w = (u * s) @ v.T
    full = decompose(w, 5)
    again = decompose(-(-w), 5)
    assert torch.equal(full["U"], again["U"])
    assert torch.allclose((full["U"] * full["S"][:5]) @ full["Vh"], (u[:, :5] * s[:5]) @ v[:, :5].T, atol=1e-12)
    for wide in (w, w.T):
        exact = decompose(wide, 5)
        gram = decompose(wide, 5, method="gram")
        assert torch.allclose(gram["S"], exact["S"], rtol=1e-9)
        assert torch.allclose(gram["U"], exact["U"], atol=1e-9) and torch.allclose(gram["Vh"], exact["Vh"], atol=1e-9)
    low = decompose(w.float(), 5, method="lowrank", niter=4)
    cosines = torch.linalg.svdvals(full["U"].T @ low["U"])
    assert cosines.min() > 0.999
    assert torch.allclose(low["S"], full["S"][:5], rtol=1e-4)
    for method in ("lowrank", "gram"):
        with pytest.raises(ValueError, match="bottom"):
            decompose(w, 5, bottom=2, method=method)
