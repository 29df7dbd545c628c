"""WavLM and HuBERT through the real loading path: save_pretrained, load offline, adapt q/k, train a step."""

from __future__ import annotations

import os

import pytest
import torch

from spectral.adapters import AdapterConfig, adapter_state_dict, apply_adapters
from spectral.errors import InputError
from spectral.models import BackendConfig, SpeakerModel, adapter_root, load_ssl_backbone

transformers = pytest.importorskip("transformers")
os.environ["HF_HUB_OFFLINE"] = "1"

TINY = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
    conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4),
    num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
)


def save_tiny(kind: str, path) -> None:
    """A tiny randomly initialised WavLM or HuBERT written with save_pretrained."""
    torch.manual_seed(0)
    if kind == "wavlm":
        model = transformers.WavLMModel(transformers.WavLMConfig(num_buckets=16, max_bucket_distance=32, **TINY))
    else:
        model = transformers.HubertModel(transformers.HubertConfig(**TINY))
    model.save_pretrained(str(path))


@pytest.mark.parametrize("kind", ["wavlm", "hubert"])
def test_saved_model_loads_adapts_qk_and_trains_a_step(kind, tmp_path):
    save_tiny(kind, tmp_path / kind)
    backbone = load_ssl_backbone(tmp_path / kind, kind)
    assert backbone.num_hidden_states == 3 and backbone.hidden_size == 32
    model = SpeakerModel(backbone, BackendConfig(channels=16, scale=4, se_bottleneck=8, attention_channels=8, embed_dim=8), 3)
    root = adapter_root(model)
    apply_adapters(root, AdapterConfig(method="spectralft", targets=["q_proj", "k_proj"], rank=2, top_k=4))
    names = list(adapter_state_dict(root))
    assert any("encoder.layers.0.attention.q_proj" in n for n in names)
    assert any("encoder.layers.1.attention.k_proj" in n for n in names)
    wave = torch.randn(4, 4000)
    states = backbone(wave)
    assert len(states) == 3 and all(s.shape[0] == 4 and s.shape[2] == 32 for s in states)
    before = adapter_state_dict(root)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.5)
    loss, _ = model.head(model(wave), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    # the paper's init: A_U and B_V start at zero and get the first gradient (their partners are non-zero)
    first = [p.grad for n, p in root.named_parameters() if p.requires_grad and (".A_U" in n or ".B_V" in n)]
    assert first and all(g is not None and g.abs().sum() > 0 for g in first)
    opt.step()
    after = adapter_state_dict(root)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    frozen = [n for n, p in root.named_parameters() if p.requires_grad and "base_layer" in n]
    assert frozen == []


def test_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no such wavlm model directory"):
        load_ssl_backbone(tmp_path / "nowhere", "wavlm")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no config.json"):
        load_ssl_backbone(tmp_path / "empty", "hubert")


def test_a_hubert_directory_configured_as_wavlm_is_refused(tmp_path):
    save_tiny("hubert", tmp_path / "h")
    with pytest.raises(InputError, match="'hubert' model"):
        load_ssl_backbone(tmp_path / "h", "wavlm")


def test_wavlm_attention_through_modules_computes_what_transformers_computes(tmp_path):
    from spectral.models.ssl import call_projections

    save_tiny("wavlm", tmp_path / "w")
    reference = transformers.WavLMModel.from_pretrained(str(tmp_path / "w"), local_files_only=True).eval()
    backbone = load_ssl_backbone(tmp_path / "w", "wavlm").eval()
    assert call_projections(transformers.WavLMModel(reference.config)) == 2
    wave = torch.randn(2, 3000)
    wave = (wave - wave.mean(1, keepdim=True)) / torch.sqrt(wave.var(1, keepdim=True) + 1e-7)
    with torch.no_grad():
        want = reference(wave, output_hidden_states=True).hidden_states
        got = backbone.model(wave, output_hidden_states=True).hidden_states
    for a, b in zip(want, got):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
