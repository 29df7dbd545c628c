"""The pretrain and finetune stages: outputs, determinism, resume after a kill, NaN stop, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_fixtures import tiny_cfg, tiny_data  # noqa: F401  (fixtures)
import torch

from spectral.models import load_model_checkpoint
from spectral.train import loop as loop_module
from spectral.train.config import resolve_config, system_name
from spectral.train.finetune import finetune
from spectral.train.loop import TrainingStopped
from spectral.train.pretrain import pretrain

BIN = Path(sys.executable).parent


def tensors(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_pretrain_then_finetune_write_final_and_log(tiny_data, tiny_cfg, tmp_path):
    cfg = resolve_config(tiny_cfg)
    pre = pretrain(cfg, tiny_data, tmp_path / "pre", progress=False)
    model, ckpt = load_model_checkpoint(pre)
    assert ckpt["speakers"] == ["id10001", "id10002", "id10003", "id10004"]
    out = finetune(cfg, tiny_data, tmp_path / system_name(cfg), backbone_checkpoint=str(pre), progress=False)
    log = (out.parent / "train_log.tsv").read_text().splitlines()
    assert log[0].split("\t") == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "trainable_params"]
    assert len(log) == 3
    trainable = int(log[1].split("\t")[-1])
    merged, fine = load_model_checkpoint(out)
    assert fine["system"] == system_name(cfg) and fine["trainable_params"] == trainable
    assert fine["adapters"] and all(".B_U" in k or ".A_U" in k or ".B_V" in k or ".A_V" in k for k in fine["adapters"])
    # adapters are merged: plain Linear layers, and the model embeds
    assert type(merged.backbone.encoder.layers[0].attention.q_proj) is torch.nn.Linear
    with torch.no_grad():
        assert merged(torch.randn(2, 40, 80)).shape == (2, 8)


def test_final_pt_records_its_training_set_and_embed_refuses_it_for_another(tiny_data, tiny_cfg, tmp_path):
    from spectral.embed import embed_set
    from spectral.errors import InputError
    from spectral.train.trainset import speakers_digest

    tiny_cfg["pretrain"].update(epochs=1, steps_per_epoch=1)
    tiny_cfg["finetune"].update(epochs=1, steps_per_epoch=1)
    tiny_cfg["data"] = {"corpus": "vox1", "root": "corpus/VoxCeleb1", "train_set": "vox1_dev", "speakers": "0123"}
    cfg = resolve_config(tiny_cfg)
    pre = pretrain(cfg, tiny_data, tmp_path / "pre", progress=False)
    out = finetune(cfg, tiny_data, tmp_path / system_name(cfg), backbone_checkpoint=str(pre), progress=False)
    fine = torch.load(out, map_location="cpu", weights_only=True)
    speakers = ["id10001", "id10002", "id10003", "id10004"]
    assert fine["train_data"] == {**tiny_cfg["data"], "source": {}, "data_dir": str(tiny_data), "set": "vox1_dev",
                                  "num_speakers": 4, "num_utts": 16, "speakers_sha256": speakers_digest(speakers)}
    assert embed_set(out, tiny_data, tmp_path / "own", threads=1, progress=False, train_data_dir=tiny_data).is_file()
    other = tmp_path / "data" / "cnceleb1_dev"
    other.mkdir(parents=True)
    (other / "utt2spk").write_text("id00000-speech-01-001 id00000\n")
    with pytest.raises(InputError, match=rf"{out}: was trained on vox1_dev \(corpus vox1 at corpus/VoxCeleb1, 4 speakers.*"
                                         r"but the configured training set is cnceleb1_dev \(1 speakers"):
        embed_set(out, tiny_data, tmp_path / "emb", threads=1, progress=False, train_data_dir=other)
    assert not (tmp_path / "emb").exists()


def test_same_seed_and_config_give_identical_final_pt(tiny_data, tiny_cfg, tmp_path):
    cfg = resolve_config(tiny_cfg)
    a = pretrain(cfg, tiny_data, tmp_path / "a", progress=False)
    b = pretrain(cfg, tiny_data, tmp_path / "b", progress=False)
    assert a.read_bytes() == b.read_bytes()
    tiny_cfg["pretrain"]["seed"] = 2
    c = pretrain(resolve_config(tiny_cfg), tiny_data, tmp_path / "c", progress=False)
    assert c.read_bytes() != a.read_bytes()


class Killed(BaseException):
    """Stands in for SIGKILL inside the process: nothing after it runs."""


@pytest.mark.parametrize("kill_at", [3, 7])  # mid-epoch (after a checkpoint) and in the second epoch
def test_interrupted_finetune_resumes_to_the_same_weights(tiny_data, tiny_cfg, tmp_path, monkeypatch, kill_at):
    tiny_cfg["finetune"]["steps_per_epoch"] = 4
    tiny_cfg["finetune"]["checkpoint_every"] = 2
    tiny_cfg["model"]["builtin"]["dropout"] = 0.1
    tiny_cfg["augment"] = {"time_masks": 1, "freq_masks": 1}
    cfg = resolve_config(tiny_cfg)
    pre = tmp_path / "pre" / "final.pt"
    if not pre.exists():
        pretrain(cfg, tiny_data, tmp_path / "pre", progress=False)
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
    assert not (tmp_path / "cut" / "final.pt").exists()
    resumed = finetune(cfg, tiny_data, tmp_path / "cut", backbone_checkpoint=str(pre), progress=False)
    assert resumed.read_bytes() == whole.read_bytes()
    assert (tmp_path / "cut" / "train_log.tsv").read_text().split("\n")[0] == (tmp_path / "whole" / "train_log.tsv").read_text().split("\n")[0]


@pytest.mark.slow
def test_pretrain_killed_with_sigkill_and_restarted_ends_with_the_same_weights(tiny_data, tiny_cfg, tmp_path):
    tiny_cfg["pretrain"].update(epochs=3, steps_per_epoch=6, checkpoint_every=1)
    config = json.dumps(tiny_cfg)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def command(exp):
        return [str(BIN / "spectral-pretrain"), "--data-dir", str(tiny_data), "--exp-dir", str(exp), "--config", config, "--no-progress"]

    whole = pretrain(resolve_config(tiny_cfg), tiny_data, tmp_path / "whole", progress=False)
    exp = tmp_path / "killed"
    last = exp / "checkpoints" / "last.pt"
    resumed_runs = 0
    for kills in range(1):
        proc = subprocess.Popen(command(exp), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seen = last.stat().st_mtime_ns if last.exists() else None
        while proc.poll() is None:
            if last.exists() and last.stat().st_mtime_ns != seen:
                time.sleep(0.02 * kills)
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        _, err = proc.communicate()
        resumed_runs += "resuming from" in err
    final = subprocess.run(command(exp), env=env, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    resumed_runs += "resuming from" in final.stderr
    assert resumed_runs >= 1
    assert (exp / "final.pt").read_bytes() == whole.read_bytes()


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tiny_data, tiny_cfg, tmp_path, monkeypatch):
    tiny_cfg["pretrain"].update(steps_per_epoch=4, checkpoint_every=2)
    cfg = resolve_config(tiny_cfg)
    real = loop_module._WithLoss.forward
    calls = {"n": 0}

    def poisoned(self, x, y):
        calls["n"] += 1
        loss, cos = real(self, x, y)
        return (loss * float("nan"), cos) if calls["n"] == 3 else (loss, cos)

    monkeypatch.setattr(loop_module._WithLoss, "forward", poisoned)
    with pytest.raises(TrainingStopped, match=r"non-finite loss \(nan\) at epoch 1, step 3.*last good checkpoint is kept"):
        pretrain(cfg, tiny_data, tmp_path / "pre", progress=False)
    last = torch.load(tmp_path / "pre" / "checkpoints" / "last.pt", weights_only=True)
    assert (last["epoch"], last["step"]) == (0, 2)
    assert all(torch.isfinite(t).all() for t in last["state"].values() if t.is_floating_point())
    assert not (tmp_path / "pre" / "final.pt").exists()


def test_a_checkpoint_of_other_settings_is_set_aside_and_training_restarts(tiny_data, tiny_cfg, tmp_path):
    pretrain(resolve_config(tiny_cfg), tiny_data, tmp_path / "pre", progress=False)
    (tmp_path / "pre" / "final.pt").unlink()
    old_last = (tmp_path / "pre" / "checkpoints" / "last.pt").read_bytes()
    tiny_cfg["pretrain"]["lr"] = 0.5
    pretrain(resolve_config(tiny_cfg), tiny_data, tmp_path / "pre", progress=False)
    assert (tmp_path / "pre" / "checkpoints" / "last.stale.pt").read_bytes() == old_last
    pretrain(resolve_config(tiny_cfg), tiny_data, tmp_path / "fresh", progress=False)
    restarted = torch.load(tmp_path / "pre" / "final.pt", weights_only=True)["model"]
    fresh = torch.load(tmp_path / "fresh" / "final.pt", weights_only=True)["model"]
    assert all(torch.equal(restarted[k], fresh[k]) for k in fresh)


@pytest.mark.slow
def test_ddp_with_two_gloo_processes_equals_one_process(tiny_data, tiny_cfg, tmp_path):
    tiny_cfg["model"]["builtin"]["dropout"] = 0.0
    # SGD, not Adam: Adam turns gradients that are zero up to rounding (k_proj.bias) into full steps
    tiny_cfg["pretrain"].update(epochs=1, steps_per_epoch=3, distributed=True, optimizer="sgd", lr=0.01, grad_clip=1.0)
    config = json.dumps(tiny_cfg)
    args = ["--data-dir", str(tiny_data), "--config", config, "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([str(BIN / "spectral-pretrain"), *args, "--exp-dir", str(tmp_path / "one")],
                         env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2", str(BIN / "spectral-pretrain"),
                          *args, "--exp-dir", str(tmp_path / "two")], env=env, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = tensors(tmp_path / "one" / "final.pt"), tensors(tmp_path / "two" / "final.pt")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key].float(), b[key].float(), rtol=1e-3, atol=1e-4, msg=key)
    changed = [k for k in a if a[k].is_floating_point() and "backbone" in k]
    assert changed
