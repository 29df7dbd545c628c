"""Stage drift (steps/drift.sh, spectral-drift) on tiny trained systems, and the svd stage's drift of pre-training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_fixtures import tiny_cfg, tiny_data, TINY  # noqa: F401  (fixtures)

from spectral.drift import MEASURES, main as drift_main
from spectral.models.builtin import BuiltinConfig, initial_backbone
from spectral.svd import main as svd_main
from spectral.train import pretrain as pretrain_module
from spectral.train.config import resolve_config
from spectral.train.finetune import finetune
from spectral.train.pretrain import pretrain

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
OUTPUTS = ("drift.json", "drift.png", "drift.tsv")


def _no_nan(text: str) -> dict:
    def refuse(constant):
        raise AssertionError(f"drift.json holds {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def systems(tiny_data, tmp_path_factory):
    """A pre-trained tiny backbone, its svd factors (k = 4) and four fine-tuned systems."""
    import copy

    root = tmp_path_factory.mktemp("drift")
    base = copy.deepcopy(TINY)
    base["finetune"]["epochs"] = 1
    cfg = resolve_config(base)
    pre = pretrain(cfg, tiny_data, root / "pre", progress=False)
    assert svd_main(["--top-k", "4", "--targets", "q_proj k_proj", str(pre), str(root / "svd")]) == 0
    out = {"pre": pre, "svd": root / "svd", "root": root}
    for method in ("spectralft", "lora", "frozen", "full"):
        settings = copy.deepcopy(base)
        settings["adapter"] = {**settings["adapter"], "method": method}
        out[method] = finetune(resolve_config(settings), tiny_data, root / method, backbone_checkpoint=str(pre),
                               progress=False)
    return out


def _stage(*args: str) -> subprocess.CompletedProcess:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "LC_ALL": "C", "HOME": str(Path.home())}
    return subprocess.run([str(REPO / "steps" / "drift.sh"), *args], capture_output=True, text=True, env=env, timeout=300)


def test_stage_writes_tsv_json_png_for_spectralft_with_its_own_k(systems, tmp_path):
    out = tmp_path / "drift"
    run = _stage("--factors", str(systems["svd"] / "factors.pt"), str(systems["spectralft"]), str(systems["pre"]), str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)  # no temporary left behind
    doc = _no_nan((out / "drift.json").read_text())
    assert doc["format"] == "spectral-drift/1" and doc["method"] == "spectralft" and doc["top_k"] == 4
    names = [f"encoder.layers.{i}.attention.{p}" for i in range(2) for p in ("q_proj", "k_proj")]
    assert list(doc["matrices"]) == names
    for row in doc["matrices"].values():
        assert row["updated"] and row["k"] == 4 and row["target"]
        shares = [row[k] for k in ("share_block", "share_left", "share_right", "share_outside")]
        assert sum(shares) == pytest.approx(1.0, abs=1e-6)
        assert 1 <= row["delta_rank"] <= 2 * 2  # rank of dW <= 2r
        # SpectralFT moves U_k and V_k: each term has one side in the top-k space, so little lands outside both
        assert row["share_outside"] < 0.05
    tsv = (out / "drift.tsv").read_text().splitlines()
    assert tsv[0].split("\t") == ["name", "layer", "kind", "target", "shape", "k", *MEASURES]
    assert len(tsv) == 5 and tsv[1].split("\t")[:6] == [names[0], "0", "q_proj", "yes", "16x16", "4"]
    assert (out / "drift.png").read_bytes()[:4] == b"\x89PNG"
    assert "steps/drift.sh" in run.stdout  # the stage echoes its command line


def test_lora_update_lands_outside_the_top_k_space_more_than_spectralft(systems, tmp_path):
    shares = {}
    for method in ("spectralft", "lora"):
        assert drift_main(["--top-k", "4", "--no-progress", str(systems[method]), str(systems["pre"]), str(tmp_path / method)]) == 0
        shares[method] = json.loads((tmp_path / method / "drift.json").read_text())["summary"]["share_outside"]
    assert shares["lora"] > shares["spectralft"] + 0.1, shares


def test_frozen_system_reports_no_update_and_no_nan(systems, tmp_path):
    assert drift_main(["--no-progress", str(systems["frozen"]), str(systems["pre"]), str(tmp_path / "d")]) == 0
    doc = _no_nan((tmp_path / "d" / "drift.json").read_text())
    assert doc["top_k"] == 64  # no top_k of its own: the builtin default
    for row in doc["matrices"].values():
        assert row["updated"] is False and row["delta_rank"] == 0 and row["share_outside"] == 0.0
        assert row["k"] == 16  # the default k (64) is capped at min(m, n)
    assert doc["summary"]["updated"] == 0
    assert "nan" not in (tmp_path / "d" / "drift.tsv").read_text().lower()


def test_full_fine_tuning_covers_every_linear_of_the_backbone(systems, tmp_path):
    assert drift_main(["--default-top-k", "4", "--no-progress", str(systems["full"]), str(systems["pre"]), str(tmp_path / "d")]) == 0
    doc = json.loads((tmp_path / "d" / "drift.json").read_text())
    kinds = sorted({row["kind"] for row in doc["matrices"].values()})
    assert kinds == ["intermediate_dense", "k_proj", "out_proj", "output_dense", "q_proj", "v_proj"]
    assert len(doc["matrices"]) == 2 * 6
    assert {row["kind"] for row in doc["matrices"].values() if row["target"]} == {"q_proj", "k_proj"}
    assert doc["summary"]["matrices"] == 4  # the summary is over the targets


def test_a_system_trained_from_another_backbone_is_refused(systems, tiny_data, tmp_path, capsys):
    import copy

    other = copy.deepcopy(TINY)
    other["pretrain"] = {**other["pretrain"], "seed": 7, "epochs": 1}
    pre2 = pretrain(resolve_config(other), tiny_data, tmp_path / "pre2", progress=False)
    assert drift_main(["--no-progress", str(systems["lora"]), str(pre2), str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert str(systems["lora"]) in err and "another backbone" in err
    assert not (tmp_path / "d" / "drift.json").exists()


def test_stage_checks_its_inputs_before_work(systems, tmp_path):
    run = _stage(str(tmp_path / "nope.pt"), str(systems["pre"]), str(tmp_path / "d"))
    assert run.returncode == 1 and "missing or empty" in run.stderr
    run = _stage("--factors", str(tmp_path / "none.pt"), str(systems["lora"]), str(systems["pre"]), str(tmp_path / "d"))
    assert run.returncode == 1 and "run the svd stage first" in run.stderr
    assert not (tmp_path / "d").exists()
    help_text = subprocess.run([str(BIN / "spectral-drift"), "--help"], capture_output=True, text=True).stdout
    assert "example:" in help_text and "spectral-drift --factors" in help_text


def test_svd_stage_reports_what_pre_training_moved_from_the_recreated_init(systems, tiny_data, tmp_path, monkeypatch):
    doc = json.loads((systems["svd"] / "spectra.json").read_text())
    moved = doc["pretraining_drift"]
    assert moved["seed"] == resolve_config(TINY).pretrain.seed and moved["top_k"] == 4
    assert set(moved["matrices"]) == set(doc["matrices"])
    for row in moved["matrices"].values():
        assert row["updated"] and 0.0 <= row["cos2_mean_left"] <= 1.0 and 0.0 <= row["cos2_mean_right"] <= 1.0
    assert 0.0 < moved["summary"]["cos2_mean_left"] < 1.0

    # the re-created initialisation is exactly the one the pretrain stage trained from
    seen = {}

    def capture(model, *args, **kwargs):
        seen.update({k: v.clone() for k, v in model.backbone.state_dict().items()})
        raise RuntimeError("stop after capturing the initial weights")

    monkeypatch.setattr(pretrain_module, "train", capture)
    cfg = resolve_config(TINY)
    with pytest.raises(RuntimeError, match="capturing"):
        pretrain(cfg, tiny_data, tmp_path / "pre", progress=False)
    again = initial_backbone(BuiltinConfig.from_dict(cfg.model.builtin.to_dict()), cfg.pretrain.seed).state_dict()
    assert seen.keys() == again.keys() and all(torch.equal(seen[k], again[k]) for k in seen)
    ckpt = torch.load(systems["pre"], weights_only=True)
    assert ckpt["init"]["seed"] == cfg.pretrain.seed and ckpt["init"]["torch"] == str(torch.__version__)


def test_wavlm_system_drift_against_its_transformers_directory(tiny_data, tmp_path):
    transformers = pytest.importorskip("transformers")
    import copy
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    model_dir = tmp_path / "wavlm"
    transformers.WavLMModel(transformers.WavLMConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48, conv_dim=(16, 16),
        conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
        num_buckets=16, max_bucket_distance=32)).save_pretrained(str(model_dir))
    settings = copy.deepcopy(TINY)
    settings["model"] = {"backbone": "wavlm", "path": str(model_dir)}
    settings["adapter"] = {"method": "lora", "rank": 2}
    settings["finetune"].update(epochs=1, steps_per_epoch=2, batch_size=4, crop_seconds=0.5, warmup_steps=0)
    final = finetune(resolve_config(settings), tiny_data, tmp_path / "exp", progress=False)
    assert drift_main(["--default-top-k", "4", "--no-progress", str(final), str(model_dir), str(tmp_path / "d")]) == 0
    doc = _no_nan((tmp_path / "d" / "drift.json").read_text())
    assert doc["backbone"] == "wavlm" and doc["top_k"] == 4
    want = {f"encoder.layers.{i}.attention.{p}" for i in range(2) for p in ("q_proj", "k_proj")}
    assert set(doc["matrices"]) == want  # the transformers model's own module order (k_proj first)
    assert all(row["updated"] and row["delta_rank"] <= 2 for row in doc["matrices"].values())
    # a pre-trained directory that is not there is refused, naming it
    assert drift_main(["--no-progress", str(final), str(tmp_path / "nowhere"), str(tmp_path / "e")]) == 1
