"""Every command's --help: its examples parse with the command's own parser, name only paths the
workflow writes, and the defaults of options that have a config key are the schema's."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
COMMANDS = {**SCRIPTS, "python -m spectral.augment": "spectral.augment:main",
            "python -m spectral.scoring.embeddings": "spectral.scoring.embeddings:main"}
STAGE_SCRIPTS = sorted(p for p in [*(REPO / "steps").glob("*.sh"), *(REPO / "local").glob("*.sh")]
                       if p.name not in ("stage.sh", "launch_training.sh"))  # sourced by the others

SET = r"[A-Za-z0-9_]+"
LIST = r"(vox1_[OEH](_orig)?|cnceleb1_(concat|avg)|dev_val)"
SYSTEM = r"(SYSTEM(_[AB])?|<system>|(builtin|wavlm|hubert)_[a-z_]+?(_k\d+)?(_r\d+)?(_nores)?_s\d+_[0-9a-f]{8})"
#: Every path under data/, exp/ and results/ the workflow writes (and the directories holding them).
WRITTEN = [
    rf"data(/{SET}(/(wav\.scp|utt2spk|spk2utt|feats\.scp|dev_speakers|trials(/{LIST})?|enroll_maps/{LIST}))?)?",
    r"data/augment/(noise|rir)_recordings\.jsonl\.gz",
    r"exp/pretrain/builtin(/final\.pt)?",
    r"exp/svd/[A-Za-z0-9_.-]+/k\d+_b\d+(/factors\.pt)?",
    rf"exp/{SYSTEM}(/(final\.pt|results\.txt|drift|export|scores(/{LIST}\.score)?"
    rf"|embeddings/{SET}(/(xvector|spk_xvector)\.scp)?|ablate/(zero|revert)(/(final\.pt|comparison\.md))?))?",
    r"results(/(vox1_eer\.txt|lr_selection\.tsv|comparison\.(md|png|tsv)|ablation\.md))?",
]


class Parsed(Exception):
    pass


def parser_of(entry: str, monkeypatch) -> argparse.ArgumentParser:
    """The argument parser ``entry`` (module:function) builds, caught when it parses."""
    caught = []

    def catch(self, args=None, namespace=None):
        caught.append(self)
        raise Parsed

    with monkeypatch.context() as m:
        m.setattr(argparse.ArgumentParser, "parse_args", catch)
        module, _, func = entry.partition(":")
        with pytest.raises(Parsed):
            getattr(importlib.import_module(module), func)(["x"])
    return caught[0]


def examples(text: str, prog: str) -> list[str]:
    """The example command lines of a help text (continuations joined), from ``prog`` on."""
    if not re.search(r"^(examples?:|.*e\.g\.:)", text, re.M):
        return []
    body = re.split(r"^(?:examples?:|.*?e\.g\.:)", text, maxsplit=1, flags=re.M)[1]
    body = re.sub(r"\\\n\s*", " ", body)
    return [line[line.index(prog):] for line in body.splitlines() if prog in line]


def check_paths(words: list[str]) -> None:
    for word in words:
        word = word.split("=", 1)[-1]
        if word.startswith("conf/"):
            assert (REPO / word).exists(), f"{word}: no such file in the repository"
        if re.match(r"(data|exp|results)(/|$)", word):
            assert any(re.fullmatch(p, word.rstrip("/")) for p in WRITTEN), f"{word}: a path the workflow never writes"


@pytest.mark.parametrize("prog", sorted(COMMANDS))
def test_every_example_of_every_command_parses_and_names_workflow_paths(prog, capsys, monkeypatch):
    parser = parser_of(COMMANDS[prog], monkeypatch)
    found = examples(parser.epilog or "", prog)
    assert found, f"{prog} --help has no example"
    for line in found:
        words = shlex.split(re.sub(r"\$\([^)]*\)", "SYSTEM", line.split(" | ")[0]))[len(prog.split()):]
        words = [w for w in words if not w.startswith("(")]  # a remark after the command
        check_paths(words)
        parser.parse_args(words)  # a bad example exits 2 naming the option


@pytest.mark.parametrize("script", STAGE_SCRIPTS, ids=lambda p: p.name)
def test_every_stage_script_example_uses_its_options_and_names_workflow_paths(script):
    run = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    found = examples(run.stdout, str(script))
    assert found, f"{script.name} --help has no example"
    usage = run.stdout.split("e.g.:", 1)[0] + run.stdout.split("e.g.:", 1)[1].split("\n", 1)[-1]
    for line in found:
        words = shlex.split(line)[1:]
        check_paths(words)
        for option in (w for w in words if w.startswith("--")):
            assert option in usage, f"{script.name}: the example's {option} is not among its options"


def schema_default(key: str):
    node = yaml.safe_load((REPO / "conf" / "config.schema.yaml").read_text())
    for part in key.split("."):
        node = node["properties"][part]
    return node["default"]


#: command option -> the config key whose value the workflow passes to it: the same default.
DEFAULTS = [
    ("spectral.svd", "top_k", "adapter.top_k"),
    ("spectral.svd", "method", "svd.method"),
    ("spectral.svd", "dtype", "svd.dtype"),
    ("spectral.svd", "targets", "adapter.targets"),
    *[("spectral.embed", key, f"embed.{key}") for key in
      ("max_seconds", "crops", "crop_seconds", "threads", "device", "precision", "batch_seconds")],
    ("spectral.scoring.score", "top_n", "score.asnorm_top_n"),
    ("spectral.drift", "top_k", "drift.top_k"),
    *[("spectral.features", key, f"features.{key}") for key in
      ("nj", "num_mel_bins", "frame_length_ms", "frame_shift_ms", "dither")],
    ("spectral.corpora.dev_trials", "trials", "finetune.dev_trials"),
]


@pytest.mark.parametrize("module,dest,key", DEFAULTS, ids=lambda v: str(v))
def test_command_defaults_are_the_schemas(module, dest, key, monkeypatch):
    parser = parser_of(f"{module}:main", monkeypatch)
    default = next(a.default for a in parser._actions if a.dest == dest)
    expected = schema_default(key)
    if isinstance(expected, list):
        default = default.split()
    assert default == expected, f"{module} --{dest.replace('_', '-')} defaults to {default!r}, the schema's {key} to {expected!r}"
