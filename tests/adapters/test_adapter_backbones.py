"""Adapters inside real transformers backbones (tiny random WavLM and HuBERT, built offline).

WavLM's attention never calls q_proj/k_proj: it passes their ``.weight`` to
``F.multi_head_attention_forward``. These tests pin down that the adapters still take part
(gradient, a step changes the output, merging agrees) in both backbones.
"""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from spectral.adapters import AdapterConfig, adapter_layers, apply_adapters, merge_adapters  # noqa: E402

TINY = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3),
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
)


def tiny(kind: str):
    """A tiny random backbone whose q/k weights are large enough for attention not to be uniform."""
    torch.manual_seed(0)
    if kind == "wavlm":
        model = transformers.WavLMModel(transformers.WavLMConfig(**TINY, num_buckets=32, max_bucket_distance=64))
    else:
        model = transformers.HubertModel(transformers.HubertConfig(**TINY))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("q_proj.weight", "k_proj.weight")):
                param.mul_(20)
    return model.eval()


@pytest.mark.parametrize(
    "kind,method", [("wavlm", "spectralft"), ("wavlm", "dora"), ("wavlm", "lora"), ("hubert", "spectralft")]
)
def test_adapters_take_part_in_the_backbone(kind, method):
    x = torch.randn(2, 800, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = tiny(kind)(x).last_hidden_state
    model = apply_adapters(tiny(kind), AdapterConfig(method=method, rank=2, top_k=8))
    assert len(adapter_layers(model)) == 4
    out = model(x).last_hidden_state
    assert torch.allclose(out, reference, rtol=1e-5, atol=1e-5)
    # a fixed projection: the output is layer-normed, so its plain energy hardly depends on anything
    direction = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * direction).sum().backward()
    params = [p for p in model.parameters() if p.requires_grad]
    assert any(torch.count_nonzero(p.grad) > 0 for p in params)
    torch.optim.SGD(params, lr=0.1).step()
    with torch.no_grad():
        moved = model(x).last_hidden_state
        assert not torch.allclose(moved, reference, atol=1e-4)
        merged = merge_adapters(model)(x).last_hidden_state
    assert torch.allclose(merged, moved, rtol=1e-4, atol=1e-5)
