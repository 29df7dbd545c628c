"""Mixed precision and DataLoader workers: bf16/fp16 steps resume exactly, fp16 skips overflows, workers change no crop."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from train_fixtures import tiny_cfg, tiny_data  # noqa: F401  (fixtures)

from spectral.adapters import AdapterConfig, apply_adapters
from spectral.train import precision as precision_module
from spectral.train.config import TrainConfig, resolve_config, system_name
from spectral.train.data import SpeakerData
from spectral.train.finetune import finetune
from spectral.train.loader import BatchStream
from spectral.train.precision import Precision, autocast
from spectral.train.pretrain import pretrain


class Killed(BaseException):
    """Stands in for SIGKILL inside the process: nothing after it runs."""


@pytest.fixture(scope="module")
def pretrained(tiny_data, tmp_path_factory):  # noqa: F811
    from train_fixtures import TINY

    out = tmp_path_factory.mktemp("pre")
    return pretrain(resolve_config({k: dict(v) for k, v in TINY.items()}), tiny_data, out, progress=False)


def _kill_and_resume(cfg, tiny_data, pre, tmp_path, monkeypatch, kill_at=3, **resume_cfg):  # noqa: F811
    """final.pt bytes of (an uninterrupted run, a run killed at optimiser step ``kill_at`` and resumed)."""
    whole = finetune(cfg, tiny_data, tmp_path / "whole", backbone_checkpoint=str(pre), progress=False)
    real_step = torch.optim.AdamW.step
    calls = {"n": 0}

    def step_then_die(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise Killed()
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step_then_die)
    with pytest.raises(Killed):
        finetune(cfg, tiny_data, tmp_path / "cut", backbone_checkpoint=str(pre), progress=False)
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    for section, values in resume_cfg.items():
        for key, value in values.items():
            setattr(getattr(cfg, section), key, value)
    resumed = finetune(cfg, tiny_data, tmp_path / "cut", backbone_checkpoint=str(pre), progress=False)
    return whole.read_bytes(), resumed.read_bytes()


def _cfg(tiny_cfg, **finetune):  # noqa: F811
    tiny_cfg["finetune"].update(steps_per_epoch=4, checkpoint_every=2, **finetune)
    tiny_cfg["augment"] = {"time_masks": 1, "freq_masks": 1}
    return resolve_config(tiny_cfg)


def test_bf16_steps_run_and_resume_exactly(tiny_data, tiny_cfg, pretrained, tmp_path, monkeypatch):  # noqa: F811
    cfg = _cfg(tiny_cfg, precision="bf16")
    whole, resumed = _kill_and_resume(cfg, tiny_data, pretrained, tmp_path, monkeypatch)
    assert resumed == whole
    fp32 = finetune(_cfg(tiny_cfg, precision="fp32"), tiny_data, tmp_path / "fp32", backbone_checkpoint=str(pretrained), progress=False)
    assert fp32.read_bytes() != whole  # autocast did act
    assert system_name(cfg) != system_name(_cfg(tiny_cfg, precision="fp32"))


def test_fp16_steps_resume_exactly_with_the_scaler_state(tiny_data, tiny_cfg, pretrained, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(precision_module, "INIT_SCALE", 2.0**22)  # the first steps overflow, the scale comes down
    cfg = _cfg(tiny_cfg, precision="fp16")
    whole, resumed = _kill_and_resume(cfg, tiny_data, pretrained, tmp_path, monkeypatch, kill_at=2)
    assert resumed == whole
    last = torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=True)
    assert last["precision"]["precision"] == "fp16" and last["precision"]["scaler"]["scale"] < 2.0**22


def test_fp16_scaler_skips_an_overflowing_step_and_says_so(caplog):
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    prec = Precision("fp16", "cpu")
    before = layer.weight.detach().clone()
    scale = prec.scaler.get_scale()
    with prec.autocast():
        out = layer(torch.randn(5, 4))
    assert out.dtype == torch.float16
    prec.backward(out.float().pow(2).mean())
    layer.weight.grad[0, 0] = float("inf")  # an overflow in the backward pass
    with caplog.at_level(logging.WARNING, logger="spectral.train"):
        applied = prec.step(opt, list(layer.parameters()), grad_clip=1.0, where="epoch 1, step 7")
    assert applied is False and prec.skipped == 1
    assert torch.equal(layer.weight, before)
    assert prec.scaler.get_scale() == scale / 2
    assert "gradient overflow at epoch 1, step 7: step skipped" in caplog.text
    opt.zero_grad()
    with prec.autocast():
        out = layer(torch.randn(5, 4))
    prec.backward(out.float().pow(2).mean())
    assert prec.step(opt, list(layer.parameters()), grad_clip=1.0) is True
    assert not torch.equal(layer.weight, before)
    state = prec.state_dict()
    again = Precision("fp16", "cpu")
    again.load_state_dict(state)
    assert again.scaler.get_scale() == prec.scaler.get_scale() and again.skipped == 1


def test_fp16_finetune_logs_each_skipped_step(tiny_data, tiny_cfg, pretrained, tmp_path, monkeypatch, caplog):  # noqa: F811
    monkeypatch.setattr(precision_module, "INIT_SCALE", 2.0**100)
    cfg = _cfg(tiny_cfg, precision="fp16", epochs=1)
    with caplog.at_level(logging.WARNING, logger="spectral.train"):
        finetune(cfg, tiny_data, tmp_path / "run", backbone_checkpoint=str(pretrained), progress=False)
    assert "gradient overflow at epoch 1, step 1: step skipped" in caplog.text


def test_adapted_weight_and_factors_stay_float32_under_autocast():
    torch.manual_seed(0)
    root = torch.nn.Sequential()
    root.add_module("q_proj", torch.nn.Linear(16, 12))
    apply_adapters(root, AdapterConfig(method="spectralft", targets=["q_proj"], rank=2, top_k=4))
    layer = root.q_proj
    with torch.no_grad():
        layer.B_U.normal_()
        layer.B_V.normal_()
    reference = layer.adapted_weight()
    for precision in ("bf16", "fp16"):
        with autocast("cpu", precision):
            w = layer.adapted_weight()
            left, right = layer.delta_factors()
            y = layer(torch.randn(3, 16))
        assert w.dtype == left.dtype == right.dtype == torch.float32
        assert torch.equal(w, reference)
        assert y.dtype != torch.float32  # the product with the input does run in half precision


def test_precision_and_workers_are_checked():
    with pytest.raises(ValueError, match="finetune.precision must be one of fp32, bf16, fp16, got 'fp8'"):
        TrainConfig.from_dict({"precision": "fp8"}, "finetune")
    with pytest.raises(ValueError, match="pretrain.num_workers must be an integer >= 0"):
        TrainConfig.from_dict({"num_workers": -1}, "pretrain")


def test_workers_give_the_same_crops_as_the_training_process(tiny_data):  # noqa: F811
    from spectral.train.config import AugmentConfig

    data = SpeakerData(tiny_data, "fbank", 0.4, AugmentConfig(time_masks=2, freq_masks=1))
    inline = TrainConfig(batch_size=8, num_workers=0)
    workers = TrainConfig(batch_size=8, num_workers=2)
    a = BatchStream(data, inline, epoch=1, first=2, steps=6)
    b = BatchStream(data, workers, epoch=1, first=2, steps=6)
    for step in range(2, 6):
        xa, ya = a.next(step)
        xb, yb = b.next(step)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    b.close()


def _same_weights(a: Path, b: Path) -> bool:
    ta, tb = (torch.load(p, map_location="cpu", weights_only=True) for p in (a, b))
    return all(ta[k].keys() == tb[k].keys() and all(torch.equal(ta[k][n], tb[k][n]) for n in ta[k])
               for k in ("model", "adapters"))


def test_workers_change_no_weight_and_resume_exactly(tiny_data, tiny_cfg, pretrained, tmp_path, monkeypatch):  # noqa: F811
    cfg = _cfg(tiny_cfg, num_workers=2)
    # killed with 2 workers, resumed with none: final.pt differs only in the recorded num_workers
    _kill_and_resume(cfg, tiny_data, pretrained, tmp_path, monkeypatch, finetune={"num_workers": 0})
    assert _same_weights(tmp_path / "cut" / "final.pt", tmp_path / "whole" / "final.pt")
    inline = finetune(_cfg(tiny_cfg, num_workers=0), tiny_data, tmp_path / "inline", backbone_checkpoint=str(pretrained), progress=False)
    assert _same_weights(inline, tmp_path / "whole" / "final.pt")
    assert system_name(cfg) == system_name(_cfg(tiny_cfg, num_workers=0))


def test_precision_and_workers_options_set_the_stage_s_own_section():
    import argparse

    from spectral.train.common import add_common_arguments, resolve

    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    args = parser.parse_args(["--precision", "bf16", "--num-workers", "3"])
    cfg = resolve(parser, args, "finetune")
    assert (cfg.finetune.precision, cfg.finetune.num_workers) == ("bf16", 3)
    assert (cfg.pretrain.precision, cfg.pretrain.num_workers) == ("fp32", 0)
    with pytest.raises(SystemExit):
        parser.parse_args(["--precision", "fp8"])
