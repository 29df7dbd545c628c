"""The config schema: every key documented with a default; unknown keys and bad values rejected."""

from __future__ import annotations

import copy

import pytest
from pathlib import Path
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

REPO = Path(__file__).resolve().parents[1]

SCHEMA = REPO / "conf" / "config.schema.yaml"


def walk(node, path="config"):
    for key, sub in node.get("properties", {}).items():
        yield f"{path}.{key}", sub
        yield from walk(sub, f"{path}.{key}")


def load(path):
    return yaml.safe_load(open(path))


def test_every_key_has_a_description_and_a_default():
    schema = load(SCHEMA)
    for path, node in walk(schema):
        assert node.get("description"), f"{path} has no description"
        assert "default" in node, f"{path} has no default"
        if node.get("type") == "object":
            assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"
    assert schema["additionalProperties"] is False


def test_defaults_fill_an_empty_config():
    config: dict = {}
    validate(config, str(SCHEMA))
    assert config["corpus"]["name"] == "embedded"
    assert config["features"]["num_mel_bins"] == 80
    assert config["embedded"]["size"] == "default"


SHIPPED = sorted(p for p in (REPO / "conf").glob("*.yaml") if p != SCHEMA)


@pytest.mark.parametrize("config_file", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_validate(config_file):
    validate(load(config_file), str(SCHEMA))


@pytest.mark.parametrize(
    "patch,message",
    [
        ({"featurs": {"nj": 2}}, "'featurs' was unexpected"),
        ({"features": {"num_mel_bin": 80}}, "'num_mel_bin' was unexpected"),
        ({"features": {"nj": 0}}, "0 is less than the minimum of 1"),
        ({"embedded": {"size": "huge"}}, "'huge' is not one of"),
        ({"trials": ["vox1_X"]}, "'vox1_X' is not one of"),
    ],
    ids=["top-level-typo", "nested-typo", "nj-zero", "unknown-size", "unknown-trials"],
)
def test_bad_configs_are_rejected(patch, message):
    config = copy.deepcopy(load(REPO / "conf" / "config.yaml"))
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    with pytest.raises(WorkflowError, match=message):
        validate(config, str(SCHEMA))
