"""Stage ablate (spectral-ablate): a system's final.pt with its adapted matrices zeroed or reverted."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_fixtures import tiny_data, TINY  # noqa: F401  (fixtures)

from spectral.ablate import ablate_state, ablated_keys, main as ablate_main
from spectral.embed import embed_set
from spectral.train.config import resolve_config
from spectral.train.finetune import finetune
from spectral.train.pretrain import pretrain

BIN = Path(sys.executable).parent
QK = ("q_proj", "k_proj")


@pytest.fixture(scope="module")
def system(tiny_data, tmp_path_factory):
    """A pre-trained tiny backbone and a LoRA system fine-tuned from it."""
    root = tmp_path_factory.mktemp("ablate")
    base = copy.deepcopy(TINY)
    base["finetune"]["epochs"] = 1
    pre = pretrain(resolve_config(base), tiny_data, root / "pre", progress=False)
    base["adapter"] = {**base["adapter"], "method": "lora", "rank": 2}
    final = finetune(resolve_config(base), tiny_data, root / "lora", backbone_checkpoint=str(pre), progress=False)
    return {"pre": Path(pre), "final": Path(final), "root": root}


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_keys_are_the_weight_and_bias_of_every_target_module_only():
    state = {f"backbone.encoder.layers.{i}.attention.{p}.{leaf}": torch.ones(2)
             for i in range(2) for p in ("q_proj", "k_proj", "v_proj") for leaf in ("weight", "bias")}
    state["backbone.encoder.layers.0.attention.q_proj_extra.weight"] = torch.ones(2)
    state["backend.q_proj.weight"] = torch.ones(2)  # not the backbone's
    keys = ablated_keys(state, QK)
    assert sorted(keys) == sorted(k for k in state if k.startswith("backbone.") and k.split(".")[-2] in QK)
    assert len(keys) == 8


def test_zero_and_revert_replace_only_those_keys():
    state = {"backbone.a.q_proj.weight": torch.full((2, 2), 3.0), "backbone.a.v_proj.weight": torch.full((2, 2), 5.0)}
    zero = ablate_state(state, ["backbone.a.q_proj.weight"], "zero")
    assert torch.equal(zero["backbone.a.q_proj.weight"], torch.zeros(2, 2))
    assert zero["backbone.a.v_proj.weight"] is state["backbone.a.v_proj.weight"]
    assert torch.equal(state["backbone.a.q_proj.weight"], torch.full((2, 2), 3.0))  # the input is left alone
    back = ablate_state(state, ["backbone.a.q_proj.weight"], "revert", {"a.q_proj.weight": torch.eye(2)})
    assert torch.equal(back["backbone.a.q_proj.weight"], torch.eye(2))
    with pytest.raises(ValueError, match="no a.q_proj.weight of shape"):
        ablate_state(state, ["backbone.a.q_proj.weight"], "revert", {"a.q_proj.weight": torch.eye(3)})


def test_zeroed_system_keeps_everything_else_and_embeds(system, tiny_data, tmp_path):
    out = tmp_path / "zero"
    assert ablate_main(["--mode", "zero", str(system["final"]), str(out)]) == 0
    src, abl = _load(system["final"]), _load(out / "final.pt")
    changed = {k for k in src["model"] if not torch.equal(src["model"][k], abl["model"][k])}
    assert changed and all(k.split(".")[-2] in QK for k in changed)
    for k in ablated_keys(src["model"], QK):
        assert not abl["model"][k].any(), k
    assert abl["ablation"]["mode"] == "zero" and len(abl["ablation"]["matrices"]) == 2 * TINY["model"]["builtin"]["num_layers"]
    assert abl["train_data"] == src["train_data"] and abl["speakers"] == src["speakers"] and "adapters" not in abl
    assert (out / "train_log.tsv").read_bytes() == (system["final"].parent / "train_log.tsv").read_bytes()
    # the ablated model embeds through the ordinary stage, for the configured training set
    scp = embed_set(out / "final.pt", tiny_data, tmp_path / "emb", progress=False, train_data_dir=tiny_data)
    assert scp.stat().st_size > 0


def test_reverted_system_holds_the_pretrained_qk(system, tmp_path):
    out = tmp_path / "revert"
    assert ablate_main(["--mode", "revert", "--pretrained", str(system["pre"]), str(system["final"]), str(out)]) == 0
    pre, src, abl = _load(system["pre"]), _load(system["final"]), _load(out / "final.pt")
    keys = ablated_keys(src["model"], QK)
    assert any(not torch.equal(src["model"][k], pre["model"][k]) for k in keys)  # LoRA moved them
    for k in keys:
        assert torch.equal(abl["model"][k], pre["model"][k]), k
    for k in set(src["model"]) - set(keys):
        assert torch.equal(abl["model"][k], src["model"][k]), k


def test_bad_input_is_one_error_line_naming_what(system, tmp_path):
    cmd = [str(BIN / "spectral-ablate")]
    out = subprocess.run(cmd + ["--mode", "revert", str(system["final"]), str(tmp_path / "x")], capture_output=True, text=True)
    assert out.returncode == 1 and "spectral-ablate: error: --pretrained: is needed by --mode revert" in out.stderr
    out = subprocess.run(cmd + ["--mode", "zero", str(tmp_path / "none.pt"), str(tmp_path / "x")], capture_output=True, text=True)
    assert out.returncode == 1 and "none.pt" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run(cmd + ["--mode", "zero", str(system["final"]), str(tmp_path / "x"), "--targets", "nope"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "has no backbone module named nope" in out.stderr
    assert not (tmp_path / "x" / "final.pt").exists()
    help_text = subprocess.run(cmd + ["--help"], capture_output=True, text=True).stdout
    assert "example:" in help_text and "results/ablation.md" in help_text
