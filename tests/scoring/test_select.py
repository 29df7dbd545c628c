"""spectral-select-lr: each method's lr is chosen on the development list, never on a test list."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spectral.scoring.select import main, read_selection

ROOT = Path(__file__).resolve().parents[2]


def _system(root: Path, name: str, metrics: dict[str, tuple[float, float]]) -> Path:
    d = root / "exp" / name
    (d / "scores").mkdir(parents=True)
    for trials, (eer, dcf) in metrics.items():
        (d / "scores" / f"{trials}.metrics.json").write_text(json.dumps(
            {"system": name, "trials": trials, "eer_percent": eer, "min_dcf": [{"p_target": 0.01, "min_dcf": dcf}]}))
    return d


def test_choice_follows_the_development_list_whatever_the_test_lists_say(tmp_path):
    # the test list would pick 0.5 for lora; the development list picks 2
    a = _system(tmp_path, "lora_a", {"dev_val": (12.0, 0.8), "vox1_O": (5.0, 0.5)})
    b = _system(tmp_path, "lora_b", {"dev_val": (10.0, 0.9), "vox1_O": (9.0, 0.7)})
    c = _system(tmp_path, "full_a", {"dev_val": (11.0, 0.7)})
    d = _system(tmp_path, "full_b", {"dev_val": (11.0, 0.6)})  # tie on EER: lower minDCF wins
    out = tmp_path / "lr_selection.tsv"
    assert main(["--out", str(out), "--run", "lora", "0.5", str(a), "--run", "lora", "2", str(b),
                 "--run", "full", "0.5", str(c), "--run", "full", "2", str(d)]) == 0
    assert read_selection(out) == {"lora": 2.0, "full": 2.0}
    rows = out.read_text().splitlines()
    assert rows[0].split("\t")[:5] == ["label", "backbone_lr_scale", "dev_val_eer_percent", "dev_val_min_dcf", "chosen"]


def test_a_run_without_development_metrics_is_named(tmp_path, capsys):
    a = _system(tmp_path, "lora_a", {"vox1_O": (5.0, 0.5)})
    assert main(["--out", str(tmp_path / "o.tsv"), "--run", "lora", "1", str(a)]) == 1
    err = capsys.readouterr().err
    assert str(a / "scores" / "dev_val.metrics.json") in err and "missing" in err
    assert not (tmp_path / "o.tsv").exists()


@pytest.mark.slow
def test_workflow_selects_on_dev_val_metrics_only(tmp_path):
    """The select_lr checkpoint's inputs are development metrics files, nothing of the test lists."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("finetune:\n  dev_speakers: 20\ncompare:\n  seeds: [1, 2]\n  lr_grid: [0.5, 2.0]\n"
                   "  methods:\n    - {label: frozen, adapter: {method: frozen}}\n    - {label: lora, adapter: {method: lora, rank: 6}}\n")
    snakemake = str(Path(sys.executable).parent / "snakemake")
    out = subprocess.run([snakemake, "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path / "w"), "-n",
                          "--configfile", str(ROOT / "conf" / "config.yaml"), str(cfg), "--printshellcmds",
                          "results/comparison.md"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if "spectral-select-lr" in ln)
    assert line.count("--run lora") == 2 and "--run frozen" not in line
    assert "vox1_O" not in line and "vox1_H" not in line
    # without development speakers a grid is refused before any work
    cfg.write_text("finetune:\n  dev_speakers: 0\ncompare:\n  lr_grid: [0.5, 2.0]\n")
    out = subprocess.run([snakemake, "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path / "w"), "-n", "results/comparison.md",
                          "--configfile", str(ROOT / "conf" / "config.yaml"), str(cfg)],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "finetune.dev_speakers > 0" in out.stdout + out.stderr
