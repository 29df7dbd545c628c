"""Training settings: schema defaults equal the code's, bad values refused early, system names distinct."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spectral.train.config import RunConfig, resolve_config, system_name

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def schema_defaults(node):
    if node.get("type") == "object" and "properties" in node:
        return {k: schema_defaults(v) for k, v in node["properties"].items()}
    return node["default"]


def test_schema_sections_hold_the_code_defaults():
    schema = yaml.safe_load(open(REPO / "conf" / "config.schema.yaml"))
    code = RunConfig().to_dict()
    for section, values in code.items():
        if section == "data":  # not a config key: the workflow derives it from corpus and the corpus rules
            assert "data" not in schema["properties"]
            continue
        assert schema_defaults(schema["properties"][section]) == values, section


def test_shipped_config_resolves():
    resolve_config(yaml.safe_load(open(REPO / "conf" / "config.yaml")))


@pytest.mark.parametrize(
    "patch,message",
    [
        ({"finetune": {"batch_size": 0}}, "finetune.batch_size must be an integer >= 1"),
        ({"finetune": {"batch_size": 10, "utts_per_speaker": 3}}, "must divide batch_size"),
        ({"pretrain": {"lr": -1.0}}, r"pretrain.lr must be in \(0.0"),
        ({"pretrain": {"optimizer": "rmsprop"}}, "optimizer must be one of"),
        ({"finetune": {"crop_seconds": 0}}, "crop_seconds"),
        ({"finetune": {"lerning_rate": 1}}, "unknown finetune key"),
        ({"adapter": {"method": "lorra"}}, "unknown adapter method"),
        ({"adapter": {"rank": 0}}, "rank must be an integer >= 1"),
        ({"backend": {"channels": 30, "scale": 8}}, "must divide backend.channels"),
        ({"model": {"backbone": "wavlm"}}, "model.path must name a local transformers directory"),
        ({"augment": {"snr_min": 20, "snr_max": 10}}, "snr_min"),
    ],
)
def test_impossible_values_are_rejected(patch, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(patch)


def test_cli_rejects_bad_config_before_any_work(tmp_path):
    out = subprocess.run([str(BIN / "spectral-finetune"), "--data-dir", str(tmp_path / "none"), "--exp-dir", str(tmp_path / "exp"),
                          "--backbone-checkpoint", "x.pt", "--set", "finetune.epochs=0"], capture_output=True, text=True)
    assert out.returncode == 2 and "finetune.epochs must be an integer >= 1" in out.stderr
    assert not (tmp_path / "exp").exists()


def test_system_name_shows_method_hyper_parameters_and_seed():
    assert system_name(resolve_config({})).startswith("builtin_spectralft_k64_r4_s1_")
    assert system_name(resolve_config({"adapter": {"method": "lora", "rank": 8}})).startswith("builtin_lora_r8_s1_")
    assert system_name(resolve_config({"adapter": {"method": "frozen"}})).startswith("builtin_frozen_s1_")


def test_a_bad_data_section_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown data key"):
        resolve_config({"data": {"corpus": "vox1", "speakerz": "a1"}})
    with pytest.raises(ValueError, match=r"data.train_set must be a non-empty string or null, got 3"):
        resolve_config({"data": {"train_set": 3}})


def test_two_configurations_never_share_a_system_name():
    base = {"adapter": {"method": "spectralft", "rank": 4, "top_k": 64}, "finetune": {"seed": 1}}
    variants = [
        {},
        {"finetune": {"seed": 2}},
        {"finetune": {"lr": 0.01}},
        {"adapter": {"alpha": 8.0}},
        {"adapter": {"targets": ["q_proj", "v_proj"]}},
        {"adapter": {"keep_residual": False}},
        {"backend": {"margin": 0.3}},
        {"augment": {"time_masks": 2}},
        {"pretrain": {"epochs": 7}},
        {"model": {"builtin": {"qk_init_scale": 0.1}}},
        # the data it is trained on: corpus, root, training set, its speakers, anything else deciding them
        {"data": {"corpus": "vox1", "root": "corpus/VoxCeleb1", "train_set": "vox1_dev", "speakers": "a1"}},
        {"data": {"corpus": "cnceleb1", "root": "corpus/VoxCeleb1", "train_set": "vox1_dev", "speakers": "a1"}},
        {"data": {"corpus": "vox1", "root": "/data/VoxCeleb1", "train_set": "vox1_dev", "speakers": "a1"}},
        {"data": {"corpus": "vox1", "root": "corpus/VoxCeleb1", "train_set": "vox1_vox2_dev", "speakers": "a1"}},
        {"data": {"corpus": "vox1", "root": "corpus/VoxCeleb1", "train_set": "vox1_dev", "speakers": "b2"}},
        {"data": {"corpus": "vox1", "root": "corpus/VoxCeleb1", "train_set": "vox1_dev", "speakers": "a1",
                  "source": {"vox2_root": "corpus/VoxCeleb2"}}},
    ]
    names = set()
    for patch in variants:
        cfg = copy.deepcopy(base)
        for section, values in patch.items():
            cfg.setdefault(section, {}).update(values)
        names.add(system_name(resolve_config(cfg)))
    assert len(names) == len(variants)
    # settings that do not change the result do not change the name
    assert system_name(resolve_config({**base, "finetune": {"seed": 1, "threads": 2, "checkpoint_every": 7}})) == system_name(resolve_config(base))


def test_the_default_qk_init_scale_keeps_the_names_of_before_the_option():
    # the hash of the default configuration, as it was before model.builtin.qk_init_scale existed
    plain = resolve_config({})
    explicit = resolve_config({"model": {"builtin": {"qk_init_scale": 1.0}}})
    assert system_name(plain) == system_name(explicit)
    assert system_name(resolve_config({"model": {"builtin": {"qk_init_scale": 0.1}}})) != system_name(plain)
