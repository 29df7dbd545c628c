"""Method ``full``: the finetune stage trains every backbone parameter, counts them, and saves a final.pt
that reloads to the very model it trained."""

from __future__ import annotations

import pytest
import torch
from train_fixtures import tiny_cfg, tiny_data  # noqa: F401  (fixtures)

from spectral.adapters import AdapterConfig, apply_adapters, count_trainable
from spectral.models import BuiltinBackbone, SpeakerModel, adapter_root, load_model_checkpoint
from spectral.models.backend import BackendConfig
from spectral.models.builtin import BuiltinConfig
from spectral.train.config import resolve_config, system_name
from spectral.train.finetune import finetune
from spectral.train.loop import load_resumable_state
from spectral.train.pretrain import pretrain


@pytest.fixture
def full_cfg(tiny_cfg):
    tiny_cfg["adapter"] = {"method": "full"}
    tiny_cfg["pretrain"]["epochs"] = 1
    tiny_cfg["pretrain"]["steps_per_epoch"] = 2
    tiny_cfg["finetune"].update(epochs=1, steps_per_epoch=2)
    return tiny_cfg


def test_one_step_of_full_gives_every_backbone_parameter_a_gradient(tiny_cfg):
    cfg = resolve_config(tiny_cfg)
    torch.manual_seed(0)
    model = SpeakerModel(BuiltinBackbone(cfg.model.builtin), cfg.backend, 4)
    apply_adapters(adapter_root(model), AdapterConfig(method="full"))
    loss, _ = model.head(model(torch.randn(4, 40, 80)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for name, p in model.backbone.named_parameters():
        assert p.requires_grad and p.grad is not None and torch.count_nonzero(p.grad) > 0, name


def test_full_finetune_trains_the_whole_backbone_and_final_pt_reloads_to_the_trained_model(tiny_data, full_cfg, tmp_path):
    cfg = resolve_config(full_cfg)
    pre = pretrain(cfg, tiny_data, tmp_path / "pre", progress=False)
    out = finetune(cfg, tiny_data, tmp_path / system_name(cfg), backbone_checkpoint=str(pre), progress=False)
    before = torch.load(pre, map_location="cpu", weights_only=True)["model"]
    fine = torch.load(out, map_location="cpu", weights_only=True)
    backbone_keys = [k for k in BuiltinBackbone(cfg.model.builtin).state_dict()]
    params = {n for n, _ in BuiltinBackbone(cfg.model.builtin).named_parameters()}
    assert params
    for name in params:
        key = f"backbone.{name}"
        assert not torch.equal(before[key], fine["model"][key]), f"{key} did not change"
    # every value of the speaker model trains: backbone, back-end and the AAM head
    model = SpeakerModel(BuiltinBackbone(cfg.model.builtin), cfg.backend, len(fine["speakers"]))
    assert fine["trainable_params"] == sum(p.numel() for p in model.parameters())
    log = (out.parent / "train_log.tsv").read_text().splitlines()
    assert int(log[1].split("\t")[-1]) == fine["trainable_params"]
    assert fine["adapters"] == {} and fine["system"] == system_name(cfg) and fine["system"].startswith("builtin_full_s1_")
    assert set(backbone_keys) <= {k[len("backbone."):] for k in fine["model"]}

    # the trained model (rebuilt from checkpoints/last.pt, written after the last step) and final.pt agree
    last = torch.load(out.parent / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    trained = SpeakerModel(BuiltinBackbone(BuiltinConfig.from_dict(fine["config"]["model"]["builtin"])),
                           BackendConfig.from_dict(fine["config"]["backend"]), len(fine["speakers"]))
    apply_adapters(adapter_root(trained), AdapterConfig(method="full"))
    assert count_trainable(trained) == fine["trainable_params"]
    load_resumable_state(trained, last["state"], out)
    reloaded, _ = load_model_checkpoint(out)
    x = torch.randn(3, 60, 80, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.equal(reloaded(x), trained.eval()(x))


def test_full_system_name_ignores_the_settings_full_does_not_read():
    base = {"adapter": {"method": "full"}}
    name = system_name(resolve_config(base))
    for patch in ({"targets": ["v_proj"]}, {"rank": 8}, {"top_k": 16}, {"alpha": 2.0}, {"dropout": 0.1}):
        assert system_name(resolve_config({"adapter": {"method": "full", **patch}})) == name
    assert system_name(resolve_config({"adapter": {"method": "full"}, "finetune": {"lr": 0.01}})) != name
