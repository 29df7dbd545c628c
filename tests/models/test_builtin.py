"""The built-in backbone: WavLM's module names, every hidden state, adapters on q/k."""

from __future__ import annotations

import pytest
import torch

from spectral.adapters import AdapterConfig, apply_adapters, count_trainable, find_targets
from spectral.models import BuiltinBackbone, BuiltinConfig

SMALL = BuiltinConfig(d_model=16, num_layers=2, num_heads=2, ffn_dim=32, dropout=0.0)


def test_projections_carry_wavlm_names():
    names = {n for n, _ in BuiltinBackbone(SMALL).named_modules()}
    for i in range(2):
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            assert f"encoder.layers.{i}.attention.{proj}" in names
        for dense in ("intermediate_dense", "output_dense"):
            assert f"encoder.layers.{i}.feed_forward.{dense}" in names


def test_returns_every_hidden_state_subsampled_by_two():
    states = BuiltinBackbone(SMALL)(torch.randn(3, 50, 80))
    assert len(states) == SMALL.num_layers + 1
    assert all(s.shape == (3, 25, 16) for s in states)


def test_default_size_is_about_a_million_parameters():
    n = sum(p.numel() for p in BuiltinBackbone().parameters())
    assert 0.7e6 < n < 1.2e6


def test_qk_targets_select_two_matrices_per_layer_and_train_only_adapters():
    model = BuiltinBackbone(SMALL)
    assert len(find_targets(model, ["q_proj", "k_proj"])) == 4
    apply_adapters(model, AdapterConfig(method="lora", rank=2, top_k=4))
    assert count_trainable(model) == 4 * 2 * (16 + 16)


@pytest.mark.parametrize("bad", [dict(num_heads=3), dict(subsample=3), dict(pos_kernel=4), dict(dropout=1.0), dict(d_model=0)])
def test_impossible_shapes_are_rejected(bad):
    with pytest.raises(ValueError):
        BuiltinConfig(**{**SMALL.to_dict(), **bad})


def test_qk_init_scale_scales_only_the_initial_q_and_k_weights():
    torch.manual_seed(0)
    plain = BuiltinBackbone(SMALL)
    torch.manual_seed(0)
    small = BuiltinBackbone(BuiltinConfig(**{**SMALL.to_dict(), "qk_init_scale": 0.1}))
    a, b = plain.state_dict(), small.state_dict()
    for name, value in a.items():
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            torch.testing.assert_close(b[name], 0.1 * value)
        else:
            assert torch.equal(b[name], value), name


@pytest.mark.parametrize("bad", [0, -0.5, True, "x"])
def test_a_bad_qk_init_scale_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="model.builtin.qk_init_scale must be a number > 0"):
        BuiltinConfig(qk_init_scale=bad)
