"""Masked-prediction pre-training (pretrain.objective: masked): loss, masks, stage outputs, resume, finetune."""

from __future__ import annotations

import math

import pytest
from train_fixtures import tiny_cfg, tiny_data  # noqa: F401  (fixtures)
import torch

from spectral.errors import InputError
from spectral.models import load_model_checkpoint
from spectral.models.builtin import BuiltinBackbone, BuiltinConfig
from spectral.train.config import OBJECTIVE_FIELDS, effective_train_dict, resolve_config, system_name
from spectral.train.finetune import finetune
from spectral.train.loop import _step_seed
from spectral.train.masked import MaskedPredictionHead, masked_l1, span_mask
from spectral.train.pretrain import pretrain


def masked_cfg(cfg: dict, **pretrain) -> dict:
    cfg["pretrain"].update(objective="masked", mask_prob=0.4, mask_span=5, **pretrain)
    cfg["finetune"]["init_backend"] = False
    return cfg


def test_span_mask_covers_the_configured_share_in_whole_spans():
    mask = span_mask(6, 200, 0.4, 10, torch.Generator().manual_seed(0))
    assert mask.shape == (6, 200) and mask.dtype == torch.bool
    assert mask.sum(dim=1).tolist() == [80] * 6
    for row in mask.int().tolist():
        runs = "".join(map(str, row)).replace("0", " ").split()
        assert all(len(run) % 10 == 0 for run in runs)  # touching spans join into longer runs
    assert span_mask(2, 11, 0.99, 10).sum(dim=1).tolist() == [10, 10]  # a frame stays visible
    with pytest.raises(ValueError, match="too short for masked spans"):
        span_mask(1, 10, 0.4, 10)


def test_masks_are_a_function_of_seed_and_step():
    def drawn(seed, step):
        torch.manual_seed(_step_seed(seed, 0, step, 0))
        return span_mask(4, 100, 0.4, 10)

    assert torch.equal(drawn(1, 3), drawn(1, 3))
    assert not torch.equal(drawn(1, 3), drawn(1, 4))
    assert not torch.equal(drawn(1, 3), drawn(2, 3))
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    assert torch.equal(span_mask(4, 100, 0.4, 10, g(5)), span_mask(4, 100, 0.4, 10, g(5)))


def test_the_loss_sees_masked_frames_only():
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 30, 8, generator=gen), torch.randn(2, 30, 8, generator=gen)
    mask = span_mask(2, 30, 0.4, 5, gen)
    loss, hits = masked_l1(pred, target, mask)
    assert math.isclose(float(loss), float((pred - target).abs().mean(-1)[mask].mean()), rel_tol=1e-6)
    assert hits.shape == (2,) and ((hits >= 0) & (hits <= 1)).all()
    b, t = (~mask).nonzero()[0].tolist()
    changed_target, changed_pred = target.clone(), pred.clone()
    changed_target[b, t] += 100.0
    changed_pred[b, t] -= 100.0
    assert torch.equal(masked_l1(pred, changed_target, mask)[0], loss)
    assert torch.equal(masked_l1(changed_pred, target, mask)[0], loss)
    b, t = mask.nonzero()[0].tolist()
    changed_target[b, t] += 100.0
    assert masked_l1(pred, changed_target, mask)[0] > loss
    # a perfect prediction beats the mean-frame baseline at every masked frame
    assert masked_l1(target, target, mask)[1].tolist() == [1.0, 1.0]


def test_the_head_predicts_subsample_frames_per_hidden_step():
    cfg = BuiltinConfig(d_model=16, num_layers=1, num_heads=2, ffn_dim=32, subsample=2)
    head = MaskedPredictionHead(cfg)
    hidden = BuiltinBackbone(cfg)(torch.randn(3, 41, 80))[-1]
    assert hidden.shape[1] == 21
    assert head(hidden, 41).shape == (3, 41, 80)


def test_masked_pretrain_writes_a_loadable_final_pt_and_finetune_starts_from_it(tiny_data, tiny_cfg, tmp_path):
    cfg = resolve_config(masked_cfg(tiny_cfg))
    pre = pretrain(cfg, tiny_data, tmp_path / "pre", progress=False)
    model, ckpt = load_model_checkpoint(pre)
    assert ckpt["config"]["train"]["objective"] == "masked"
    assert set(ckpt["pretext"]) == {"mask_embed", "predictor.weight", "predictor.bias"}
    assert not any(k.startswith("pretext.") for k in ckpt["model"])
    # the backbone trained; the back-end and head are the seeded random initialisation
    torch.manual_seed(cfg.pretrain.seed)
    from spectral.models import SpeakerModel

    init = SpeakerModel(BuiltinBackbone(cfg.model.builtin), cfg.backend, len(ckpt["speakers"])).state_dict()
    assert not torch.equal(init["backbone.encoder.layers.0.attention.q_proj.weight"],
                           ckpt["model"]["backbone.encoder.layers.0.attention.q_proj.weight"])
    assert all(torch.equal(init[k], ckpt["model"][k]) for k in init if k.startswith("head.") or
               (k.startswith("backend.") and not k.split(".")[-1].startswith(("running_", "num_batches"))))
    rows = [line.split("\t") for line in (tmp_path / "pre" / "train_log.tsv").read_text().splitlines()]
    assert len(rows) == 3
    for row in rows[1:]:
        loss, acc, val_loss, val_acc = map(float, row[1:5])
        assert all(math.isfinite(v) for v in (loss, acc, val_loss, val_acc)) and 0 <= acc <= 1 and 0 <= val_acc <= 1
    out = finetune(cfg, tiny_data, tmp_path / system_name(cfg), backbone_checkpoint=str(pre), progress=False)
    fine, _ = load_model_checkpoint(out)
    with torch.no_grad():
        assert fine(torch.randn(2, 40, 80)).shape == (2, 8)


def test_masked_pretrain_gives_other_systems_than_speaker_pretrain(tiny_cfg):
    speaker = resolve_config(tiny_cfg)
    masked = resolve_config(masked_cfg(tiny_cfg))
    assert system_name(speaker) != system_name(masked)


def test_the_speaker_objective_keeps_the_system_names_it_had():
    # with objective speaker the new fields are left out of the hashed settings: names stay as before them
    for section in ("pretrain", "finetune"):
        tcfg = getattr(resolve_config({}), section)
        assert set(effective_train_dict(tcfg)) == set(tcfg.to_dict()) - set(OBJECTIVE_FIELDS)
    # so mask settings do nothing without the masked objective
    assert system_name(resolve_config({"pretrain": {"mask_span": 20, "mask_prob": 0.2}})) == system_name(resolve_config({}))


@pytest.mark.parametrize(
    "patch,message",
    [
        ({"pretrain": {"objective": "masked"}, "finetune": {}}, "finetune.init_backend must be false"),
        ({"finetune": {"objective": "masked"}}, "finetune.objective must be speaker"),
        ({"pretrain": {"objective": "contrastive"}}, "pretrain.objective must be one of speaker, masked"),
        ({"pretrain": {"mask_prob": 1.0}}, "mask_prob must be below 1"),
        ({"pretrain": {"mask_span": 0}}, "mask_span must be an integer >= 1"),
    ],
)
def test_inconsistent_objective_settings_are_rejected(patch, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(patch)


def test_the_pretrain_stage_alone_takes_the_masked_objective():
    # the pretrain rule passes model, backend, pretrain and augment only: no finetune.init_backend to check
    assert resolve_config({"pretrain": {"objective": "masked"}}).pretrain.objective == "masked"


def test_finetune_refuses_the_untrained_back_end_of_a_masked_checkpoint(tiny_data, tiny_cfg, tmp_path):
    pre = pretrain(resolve_config(masked_cfg(tiny_cfg, epochs=1, steps_per_epoch=1)), tiny_data, tmp_path / "pre",
                   progress=False)
    tiny_cfg["pretrain"]["objective"] = "speaker"  # a config that does not say how the checkpoint was made
    tiny_cfg["finetune"]["init_backend"] = True
    with pytest.raises(InputError, match="trains no speaker back-end; set finetune.init_backend: false"):
        finetune(resolve_config(tiny_cfg), tiny_data, tmp_path / "fine", backbone_checkpoint=str(pre), progress=False)


class Killed(BaseException):
    """Stands in for SIGKILL inside the process: nothing after it runs."""


@pytest.mark.parametrize("kill_at", [3, 6])  # mid-epoch (after a checkpoint) and in the second epoch
def test_interrupted_masked_pretrain_resumes_to_the_same_weights(tiny_data, tiny_cfg, tmp_path, monkeypatch, kill_at):
    cfg = resolve_config(masked_cfg(tiny_cfg, steps_per_epoch=4, checkpoint_every=2))
    whole = pretrain(cfg, tiny_data, tmp_path / "whole", progress=False)
    real_step = torch.optim.AdamW.step
    calls = {"n": 0}

    def step_then_die(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise Killed()
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step_then_die)
    with pytest.raises(Killed):
        pretrain(cfg, tiny_data, tmp_path / "cut", progress=False)
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    assert not (tmp_path / "cut" / "final.pt").exists()
    resumed = pretrain(cfg, tiny_data, tmp_path / "cut", progress=False)
    assert resumed.read_bytes() == whole.read_bytes()

    def logged(exp):  # epoch, loss, accuracy, val_loss, val_accuracy of every epoch (not the seconds)
        return [row.split("\t")[:5] for row in (exp / "train_log.tsv").read_text().splitlines()]

    assert logged(tmp_path / "cut") == logged(tmp_path / "whole")
