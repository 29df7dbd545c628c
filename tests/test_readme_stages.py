"""The README's stage table is true: every rule it names is in the rule file it names, the rule
calls the script or command it names, and the function it names exists. Every rule of the
workflow is in the table."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RULE_FILES = sorted([*(REPO / "steps" / "rules").glob("*.smk"), *(REPO / "local" / "rules").glob("*.smk")])
#: rules that only gather another stage's outputs under a target name (`snakemake exported`)
TARGET_RULES = {"exported"}


def stage_rows() -> list[dict[str, str]]:
    text = (REPO / "README.md").read_text()
    table = text.split("## Stages\n", 1)[1].split("| stage | rule (file) |", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rows.append(dict(zip(("stage", "rule", "calls", "function", "writes"), cells)))
    return rows


ROWS = stage_rows()


def rule_body(path: Path, rule: str) -> str:
    text = path.read_text()
    m = re.search(rf"^\s*(rule|checkpoint) {rule}:\n(.*?)(?=^\s*(rule|checkpoint) \w+:|\Z)", text, re.S | re.M)
    assert m, f"{path.relative_to(REPO)} has no rule {rule}"
    return m.group(2)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["stage"])
def test_each_row_names_a_rule_in_its_file_calling_its_command_and_a_real_function(row):
    m = re.fullmatch(r"(.*) \(`([^`]+)`\)", row["rule"])
    assert m, row["rule"]
    rules, rule_file = re.findall(r"`(\w+)`", m.group(1)), REPO / m.group(2)
    assert rule_file.is_file(), rule_file
    first = re.findall(r"`([^`]+)`", row["calls"])[0]  # the script or command the rule calls
    for rule in rules:
        body = rule_body(rule_file, rule)
        called = first.split()[-1] if first.startswith("python -m") else first
        assert called in body or Path(called).name in body, (rule, called)
    if first.endswith(".sh"):
        assert (REPO / first).is_file(), first
    if row["function"] != "—":
        module, _, name = row["function"].strip("`").rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), row["function"]


def test_every_rule_of_the_workflow_is_in_the_table():
    tabled = {r for row in ROWS for r in re.findall(r"`(\w+)`", row["rule"].rsplit(" (", 1)[0])}
    defined = {m for path in RULE_FILES for m in re.findall(r"^\s*(?:rule|checkpoint) (\w+):", path.read_text(), re.M)}
    assert defined - tabled - TARGET_RULES == set()
    assert tabled - defined == set()
