"""spectral-compare --drift: the per-method drift section of comparison.md and the methods x layers figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spectral.drift import drift_of_weights, write_outputs
from spectral.scoring.compare import main
from spectral.scoring.drift_summary import layer_map, load_drifts, method_summary

from test_compare import TRIALS, _system  # noqa: E402  (tests/scoring is on sys.path)

NAMES = [f"encoder.layers.{i}.attention.{p}" for i in range(2) for p in ("q_proj", "k_proj")]


def _drift(exp_dir: Path, method: str, scale: float, seed: int) -> None:
    """A real drift.json: W' = W + scale * (random update) on every target, via the stage's own functions."""
    g = torch.Generator().manual_seed(seed)
    w = {n: torch.randn(12, 12, generator=g, dtype=torch.float64) for n in NAMES}
    new = {n: v + scale * torch.randn(12, 12, generator=g, dtype=torch.float64) for n, v in w.items()}
    rows = drift_of_weights(w, new, 4, targets=["q_proj", "k_proj"])
    write_outputs(exp_dir / "drift", rows, {"system": exp_dir.name, "method": method, "top_k": 4})


@pytest.fixture
def runs(tmp_path):
    args = []
    for seed in (1, 2):
        fz = _system(tmp_path, f"frozen_s{seed}", {t: 30.0 for t in TRIALS}, 0.9, 1000, [10.0])
        lo = _system(tmp_path, f"lora_s{seed}", {t: 29.0 for t in TRIALS}, 0.8, 1500, [11.0])
        _drift(fz, "frozen", 0.0, seed)
        _drift(lo, "lora", 0.1, 10 + seed)
        args += ["--run", "frozen", str(seed), str(fz), "--run", "lora", str(seed), str(lo)]
    return tmp_path, args


def test_drift_section_averages_layers_and_seeds_and_frozen_reads_no_update(runs):
    root, args = runs
    assert main(["--trials", *TRIALS, "--drift", "--out-dir", str(root / "results"), *args]) == 0
    md = (root / "results" / "comparison.md").read_text()
    section = md.split("## Spectral drift")[1]
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in section.splitlines() if line.startswith("| ")}
    assert rows["frozen"][3:8] == ["no update"] * 5  # norm ratio and the four shares
    docs = [json.loads((root / "exp" / f"lora_s{s}" / "drift" / "drift.json").read_text()) for s in (1, 2)]
    want = sum(r["share_outside"] for d in docs for r in d["matrices"].values()) / 8
    assert rows["lora"][1:3] == ["4", "1,2"]
    assert rows["lora"][7] == f"{want:.3f}"
    assert 0.3 < want < 0.9  # a random update of a 12x12 matrix puts about (8/12)^2 outside the top-4 space
    png = root / "results" / "comparison_drift.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "nan" not in section.lower()


def test_layer_map_is_methods_by_layers_with_none_where_nothing_changed(runs):
    root, args = runs
    triples = [(args[i + 1], int(args[i + 2]), args[i + 3]) for i in range(0, len(args), 4)]
    drifts = load_drifts(triples)
    labels, layers, values = layer_map(drifts)
    assert labels == ["frozen", "lora"] and layers == [0, 1]
    assert values[0] == [None, None] and all(0.0 < v < 1.0 for v in values[1])
    assert method_summary(drifts)["frozen"]["updated"] is False


def test_without_drift_files_the_flag_names_the_missing_one(runs, capsys):
    root, args = runs
    victim = root / "exp" / "lora_s2" / "drift" / "drift.json"
    victim.unlink()
    assert main(["--trials", *TRIALS, "--drift", "--out-dir", str(root / "results"), *args]) == 1
    assert str(victim) in capsys.readouterr().err
    assert not (root / "results").exists() or not any((root / "results").iterdir())  # nothing written
    # without --drift the comparison does not read them
    assert main(["--trials", *TRIALS, "--out-dir", str(root / "results"), *args]) == 0
    assert "Spectral drift" not in (root / "results" / "comparison.md").read_text()
