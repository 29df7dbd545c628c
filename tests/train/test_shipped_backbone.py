"""A shipped builtin backbone (spectral.models.shipped): shipped with its checksum and recipe,
installed only when both match, refused naming the file otherwise; and the one the project
ships (model.path of conf/config.yaml) matches its SHA256SUMS and was made by its recipe."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from spectral.errors import InputError
from spectral.models import shipped
from spectral.train.config import resolve_config
from train_fixtures import TINY, checkpoint, tiny_data  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def shipped_dir(tmp_path, checkpoint):  # noqa: F811
    recipe = tmp_path / "recipe_overlay.yaml"
    recipe.write_text("pretrain: {epochs: 1}\n")
    out = tmp_path / "ship"
    shipped.ship(checkpoint, out, recipe, command="local/make_backbone.sh ship", commit="abc123", tree_clean=True)
    return out


def test_ship_writes_the_weights_byte_for_byte_with_their_sha256_and_recipe(shipped_dir, checkpoint):  # noqa: F811
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert (shipped_dir / "final.pt").read_bytes() == checkpoint.read_bytes()
    assert (shipped_dir / "SHA256SUMS").read_text() == f"{digest}  final.pt\n"  # sha256sum's format
    recipe = yaml.safe_load((shipped_dir / "recipe.yaml").read_text())
    assert recipe == {"sha256": digest, "command": "local/make_backbone.sh ship", "commit": "abc123",
                      "tree_clean": True, "config": {"pretrain": {"epochs": 1}}}
    assert shipped.verify(shipped_dir) == digest


def test_install_copies_the_checked_weights_where_the_stages_read_them(shipped_dir, tmp_path):
    dest = tmp_path / "exp" / "pretrain" / "builtin" / "final.pt"
    digest = shipped.install(shipped_dir, dest, {"builtin": TINY["model"]["builtin"]})
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest
    ckpt = torch.load(dest, map_location="cpu", weights_only=True)
    assert any(k.startswith("backbone.") for k in ckpt["model"])


def test_damaged_weights_are_refused_naming_the_file_and_nothing_is_installed(shipped_dir, tmp_path):
    weights = shipped_dir / "final.pt"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    dest = tmp_path / "final.pt"
    with pytest.raises(InputError, match=r"final\.pt: sha256 is [0-9a-f]{64}, but .*SHA256SUMS records"):
        shipped.install(shipped_dir, dest)
    assert not dest.exists()


def test_a_backbone_of_another_shape_than_the_config_is_refused(shipped_dir, tmp_path):
    other = dict(TINY["model"]["builtin"], d_model=32)
    with pytest.raises(InputError, match="holds a builtin backbone of shape"):
        shipped.install(shipped_dir, tmp_path / "final.pt", {"builtin": other})
    assert not (tmp_path / "final.pt").exists()


def test_a_malformed_checksum_line_is_named_by_file_and_line(shipped_dir):
    sums = shipped_dir / "SHA256SUMS"
    sums.write_text("\n" + "not-a-digest  final.pt\n")
    with pytest.raises(InputError, match=r"SHA256SUMS:2: expected '<64 hex digits>  <file>'"):
        shipped.verify(shipped_dir)


def test_a_recipe_that_names_other_weights_is_refused(shipped_dir):
    recipe = shipped_dir / "recipe.yaml"
    text = yaml.safe_load(recipe.read_text())
    text["sha256"] = "0" * 64
    recipe.write_text(yaml.safe_dump(text))
    with pytest.raises(InputError, match=r"recipe\.yaml: names weights of sha256 0{64}, but SHA256SUMS records"):
        shipped.verify(shipped_dir)


def test_a_missing_recipe_key_is_named(shipped_dir):
    recipe = shipped_dir / "recipe.yaml"
    text = yaml.safe_load(recipe.read_text())
    del text["commit"]
    recipe.write_text(yaml.safe_dump(text))
    with pytest.raises(InputError, match=r"recipe\.yaml: misses commit"):
        shipped.verify(shipped_dir)


def test_the_command_line_refuses_a_damaged_backbone_with_a_message_not_a_traceback(shipped_dir, tmp_path, venv_env):
    (shipped_dir / "final.pt").write_bytes(b"not a checkpoint")
    run = subprocess.run([str(REPO / ".venv" / "bin" / "spectral-backbone"), "install", str(shipped_dir),
                          str(tmp_path / "final.pt")], capture_output=True, text=True, env=venv_env)
    assert run.returncode == 1
    assert "spectral-backbone: error:" in run.stderr and "final.pt: sha256 is" in run.stderr
    assert "Traceback" not in run.stderr



def test_the_project_s_shipped_backbone_matches_its_checksum_recipe_and_config():
    config = yaml.safe_load((REPO / "conf" / "config.yaml").read_text())
    path = config["model"].get("path")
    if path is None:
        pytest.fail("conf/config.yaml names no shipped backbone (model.path)")
    directory = REPO / path
    digest = shipped.verify(directory)
    recipe = shipped.read_recipe(directory)
    assert recipe["config"] == yaml.safe_load((REPO / "conf" / "presets" / "backbone.yaml").read_text())
    assert recipe["command"] == f"local/make_backbone.sh {path}"
    assert len(recipe["commit"]) == 40 and recipe["tree_clean"] is True
    # what the pretrain stage recorded is what the recipe, laid over conf/config.yaml, configures
    ckpt = torch.load(directory / "final.pt", map_location="cpu", weights_only=True)
    recipe_config = {**config}
    for section, values in recipe["config"].items():
        recipe_config[section] = {**config.get(section, {}), **values}
    cfg = resolve_config({s: recipe_config[s] for s in ("model", "backend", "pretrain", "augment") if s in recipe_config})
    assert ckpt["config"]["model"]["builtin"] == cfg.model.builtin.to_dict()
    assert ckpt["config"]["backend"] == cfg.backend.to_dict()
    assert ckpt["config"]["train"] == cfg.pretrain.to_dict()
    assert ckpt["config"]["augment"] == cfg.augment.to_dict()
    assert len(ckpt["speakers"]) == recipe["config"]["embedded"]["n_pretrain_speakers"]
