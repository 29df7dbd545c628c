"""LoRA, PiSSA (and DoRA's forward) agree with Hugging Face peft on a tiny model.

peft is a test-only dependency: the same initial (residual) weight, the same outputs, and the
same outputs after the same optimiser updates.
"""

from __future__ import annotations

import copy
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
peft = pytest.importorskip("peft")

from adapter_models import make_backbone  # noqa: E402
from spectral.adapters import AdapterConfig, apply_adapters  # noqa: E402

SHAPE = (16, 12)  # non-square (out, in)
RANK, ALPHA = 4, 8


def peft_model(method: str, **extra):
    base = make_backbone(*SHAPE)
    init = {"lora": True, "pissa": "pissa", "dora": True}[method]
    config = peft.LoraConfig(
        r=RANK, lora_alpha=ALPHA, target_modules=["q_proj", "k_proj"], init_lora_weights=init,
        use_dora=(method == "dora"), **extra,
    )
    return peft.get_peft_model(base, config)


def peft_layer(model, name):
    return model.base_model.model.get_submodule(name)


def ours(method: str):
    return apply_adapters(make_backbone(*SHAPE), AdapterConfig(method=method, rank=RANK, alpha=ALPHA, top_k=RANK))


def copy_peft_tensors_into_ours(reference, model, with_magnitude=False):
    with torch.no_grad():
        for name in ("q_proj", "k_proj"):
            theirs = peft_layer(reference, name)
            mine = model.get_submodule(name)
            mine.A.copy_(theirs.lora_A["default"].weight)
            mine.B.copy_(theirs.lora_B["default"].weight)
            if with_magnitude:
                mine.magnitude.copy_(theirs.lora_magnitude_vector["default"].weight)


def train_same(models, x, steps=3):
    """Run identical SGD steps on each model; return the outputs after each step."""
    opts = [torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1) for m in models]
    for _ in range(steps):
        for model, opt in zip(models, opts):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
    with torch.no_grad():
        return [model(x) for model in models]


@pytest.mark.parametrize("method", ["lora", "pissa"])
def test_initial_residual_weight_and_outputs_match_peft(method):
    x = torch.randn(5, SHAPE[1], generator=torch.Generator().manual_seed(2))
    reference, model = peft_model(method), ours(method)
    for name in ("q_proj", "k_proj"):
        theirs = peft_layer(reference, name)
        mine = model.get_submodule(name)
        assert torch.allclose(mine.base_layer.weight, theirs.base_layer.weight, atol=2e-6), name
        # the adapter product is sign-invariant even where singular vectors flip sign
        assert torch.allclose(
            mine.B @ mine.A, theirs.lora_B["default"].weight @ theirs.lora_A["default"].weight, atol=2e-6
        ), name
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-6)


@pytest.mark.parametrize("method", ["lora", "pissa"])
def test_outputs_after_the_same_update_match_peft(method):
    x = torch.randn(5, SHAPE[1], generator=torch.Generator().manual_seed(3))
    reference, model = peft_model(method), ours(method)
    if method == "lora":
        copy_peft_tensors_into_ours(reference, model)  # A is random in both; start from the same draw
    theirs, mine = train_same([reference, model], x)
    assert not torch.allclose(mine, make_backbone(*SHAPE)(x).detach(), atol=1e-3)
    assert torch.allclose(mine, theirs, rtol=1e-4, atol=1e-5)


def test_dora_forward_matches_peft_for_the_same_tensors():
    x = torch.randn(5, SHAPE[1], generator=torch.Generator().manual_seed(4))
    reference = peft_model("dora")
    gen = torch.Generator().manual_seed(9)
    with torch.no_grad():
        for name in ("q_proj", "k_proj"):
            layer = peft_layer(reference, name)
            layer.lora_B["default"].weight.normal_(0, 0.1, generator=gen)
            layer.lora_magnitude_vector["default"].weight.mul_(1.1)
    model = ours("dora")
    copy_peft_tensors_into_ours(reference, model, with_magnitude=True)
    reference.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), rtol=1e-5, atol=1e-6)
        merged = copy.deepcopy(reference).merge_and_unload()
        assert torch.allclose(model.q_proj.adapted_weight(), merged.q_proj.weight, atol=1e-6)
