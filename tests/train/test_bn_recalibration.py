"""Batch-norm recalibration after every epoch: the statistics evaluation uses match the final weights."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from spectral.models import BackendConfig, BuiltinBackbone, BuiltinConfig
from spectral.models.speaker import SpeakerModel
from spectral.train.config import TrainConfig
from spectral.train.data import SpeakerData
from spectral.train.loop import DistInfo, recalibrate_batchnorm
from train_fixtures import tiny_data  # noqa: F401  (fixture)




def _model(n_classes: int) -> SpeakerModel:
    torch.manual_seed(0)
    backbone = BuiltinBackbone(BuiltinConfig(d_model=16, num_layers=2, num_heads=2, ffn_dim=32))
    backend = BackendConfig(channels=16, scale=4, se_bottleneck=8, attention_channels=8, embed_dim=8)
    return SpeakerModel(backbone, backend, n_classes)


def _batches(data: SpeakerData, tcfg: TrainConfig, epoch: int) -> list[torch.Tensor]:
    """The batches recalibration is documented to use (seeded by seed and epoch)."""
    out = []
    for b in range(tcfg.bn_recalibration_batches):
        rng = np.random.default_rng([tcfg.seed, epoch, 104729, b])
        items = data.sample_batch(rng, tcfg.batch_size, tcfg.utts_per_speaker)
        rngs = [np.random.default_rng([tcfg.seed, epoch, 104729, b, i]) for i in range(len(items))]
        out.append(data.batch(items, rngs, augment=False)[0])
    return out


def test_running_statistics_become_the_average_over_recalibration_batches(tiny_data):
    data = SpeakerData(tiny_data, kind="fbank", crop_seconds=0.4)
    model = _model(data.num_speakers)
    tcfg = TrainConfig(batch_size=4, bn_recalibration_batches=3, seed=5)
    first = model.backend.ecapa.conv[2]  # the first batch norm: its input is observable by a hook
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.fill_(7.0)  # stale statistics, far from the truth
            m.running_var.fill_(9.0)
    seen = []
    hook = first.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach().clone()))
    model.train()
    assert recalibrate_batchnorm(model, data, tcfg, epoch=2, info=DistInfo()) == 3
    hook.remove()
    assert model.training, "the model's mode is restored"
    assert first.momentum == 0.1, "the momentum is restored"
    assert len(seen) == 3
    expected = torch.stack([x.mean(dim=(0, 2)) for x in seen]).mean(dim=0)
    torch.testing.assert_close(first.running_mean, expected)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            assert not torch.any(m.running_mean == 7.0)


def test_recalibration_uses_un_augmented_seeded_crops_and_is_reproducible(tiny_data):
    data = SpeakerData(tiny_data, kind="fbank", crop_seconds=0.4)
    tcfg = TrainConfig(batch_size=4, bn_recalibration_batches=2, seed=5)
    states = []
    for _ in range(2):
        model = _model(data.num_speakers)
        recalibrate_batchnorm(model, data, tcfg, epoch=1, info=DistInfo())
        states.append({k: v.clone() for k, v in model.state_dict().items() if "running" in k})
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key], rtol=0, atol=0)
    # the documented batches reproduce the first layer's statistics
    model = _model(data.num_speakers)
    recalibrate_batchnorm(model, data, tcfg, epoch=1, info=DistInfo())
    probe = _model(data.num_speakers)
    probe.eval()
    with torch.no_grad():
        inputs = [probe.backend.ecapa.conv[1](probe.backend.ecapa.conv[0](
            probe.backend.norm(probe.backend.layer_weights(probe.backbone(x))).transpose(1, 2))) for x in _batches(data, tcfg, 1)]
    expected = torch.stack([x.mean(dim=(0, 2)) for x in inputs]).mean(dim=0)
    torch.testing.assert_close(model.backend.ecapa.conv[2].running_mean, expected)


def test_zero_batches_keeps_the_running_averages(tiny_data):
    data = SpeakerData(tiny_data, kind="fbank", crop_seconds=0.4)
    model = _model(data.num_speakers)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert recalibrate_batchnorm(model, data, TrainConfig(bn_recalibration_batches=0), 0, DistInfo()) == 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
