"""Fine-tuning recipe options: parameter groups, margin ramp, and the back-end's first hidden state."""

from __future__ import annotations

import pytest
import torch

from spectral.models import BackendConfig
from spectral.models.backend import SpeakerBackend
from spectral.train.config import TrainConfig
from spectral.train.loop import margin_factor, param_groups


class _Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Linear(3, 3)
        self.backend = torch.nn.Linear(3, 2)
        self.head = torch.nn.Linear(2, 2)


def test_backbone_tensors_get_their_own_group_at_the_scaled_lr():
    model = _Toy()
    groups = param_groups(model, TrainConfig(lr=0.01, backbone_lr_scale=0.1))
    by_name = {g["name"]: g for g in groups}
    assert by_name["backbone"]["lr"] == pytest.approx(0.001) and by_name["backend"]["lr"] == 0.01
    assert {id(p) for p in by_name["backbone"]["params"]} == {id(p) for p in model.backbone.parameters()}
    assert len(by_name["backend"]["params"]) == 4  # back-end and head weights and biases
    model.backbone.requires_grad_(False)  # frozen: one group
    assert [g["name"] for g in param_groups(model, TrainConfig())] == ["backend"]


def test_backbone_lr_scale_must_be_positive():
    with pytest.raises(ValueError, match="backbone_lr_scale"):
        TrainConfig(backbone_lr_scale=0.0)


def test_margin_ramp_share_is_configurable():
    assert margin_factor(25, 100, 0.5) == pytest.approx(0.5)
    assert margin_factor(25, 100, 0.25) == 1.0
    assert margin_factor(0, 100, 0.0) == 1.0
    with pytest.raises(ValueError, match="margin_ramp"):
        TrainConfig(margin_ramp=1.5)


def test_first_state_leaves_the_front_end_out_of_the_weighted_sum():
    cfg = BackendConfig(channels=8, scale=4, se_bottleneck=4, attention_channels=4, embed_dim=4, first_state=1)
    backend = SpeakerBackend(3, 6, cfg).eval()
    states = [torch.randn(2, 20, 6) for _ in range(3)]
    out = backend(states)
    assert backend.layer_weights.weights.numel() == 2
    # state 0 has no influence at all
    assert torch.equal(out, backend([torch.randn(2, 20, 6) * 100, states[1], states[2]]))
    with pytest.raises(ValueError, match="first_state"):
        SpeakerBackend(3, 6, BackendConfig(channels=8, scale=4, first_state=3))
