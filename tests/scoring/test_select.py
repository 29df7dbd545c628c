"""spectral-select-lr: each method's lr is chosen on the development list, never on a test list."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spectral.scoring.select import choose, main, read_selection

ROOT = Path(__file__).resolve().parents[2]


def _trials(root: Path) -> Path:
    """A development list of 10 target and 10 non-target trials."""
    path = root / "dev_val"
    path.write_text("".join(f"e{i} t{i} {'target' if i < 10 else 'nontarget'}\n" for i in range(20)))
    return path


def _system(root: Path, name: str, misses: int | None = None) -> Path:
    """exp/<name> with a dev_val score file (``misses`` targets scored below every non-target) and
    a test list's metrics that would choose the other way; ``misses=None``: no dev_val scores."""
    d = root / "exp" / name
    (d / "scores").mkdir(parents=True)
    (d / "scores" / "vox1_O.metrics.json").write_text(json.dumps(
        {"trials": "vox1_O", "eer_percent": 0.0 if misses else 50.0, "min_dcf": [{"p_target": 0.01, "min_dcf": 0.0}]}))
    if misses is not None:
        scores = [(-5.0 - i if i < misses else 5.0 + i) if i < 10 else float(i - 20) for i in range(20)]
        (d / "scores" / "dev_val.score").write_text("".join(f"e{i} t{i} {v}\n" for i, v in enumerate(scores)))
    return d


def test_choice_follows_the_development_list_whatever_the_test_lists_say(tmp_path):
    # the test list's metrics would pick 0.5 for lora; the development scores pick 2
    trials = _trials(tmp_path)
    a, b = _system(tmp_path, "lora_a", misses=3), _system(tmp_path, "lora_b", misses=1)
    c, d = _system(tmp_path, "full_a", misses=2), _system(tmp_path, "full_b", misses=2)  # tie: the smaller value
    out = tmp_path / "lr_selection.tsv"
    assert main(["--out", str(out), "--dev-trials-file", str(trials), "--run", "lora", "0.5", str(a),
                 "--run", "lora", "2", str(b), "--run", "full", "0.5", str(c), "--run", "full", "2", str(d)]) == 0
    assert read_selection(out) == {"lora": 2.0, "full": 0.5}
    rows = [r.split("\t") for r in out.read_text().splitlines()]
    assert rows[0][:5] == ["label", "backbone_lr_scale", "dev_val_eer_percent", "dev_val_min_dcf", "chosen"]
    # Kaldi's EER of the constructed lists: 3 and 1 misses of 10 targets, no non-target above a hit
    assert [float(r[2]) for r in rows[1:3]] == pytest.approx([30.0, 10.0], abs=5.0)
    assert float(rows[1][2]) > float(rows[2][2])


def test_an_eer_tie_goes_to_the_lower_min_dcf_then_the_smaller_value():
    rows = choose([{"label": "x", "value": 2.0, "eer": 5.0, "min_dcf": 0.5},
                   {"label": "x", "value": 1.0, "eer": 5.0, "min_dcf": 0.6},
                   {"label": "y", "value": 2.0, "eer": 5.0, "min_dcf": 0.5},
                   {"label": "y", "value": 1.0, "eer": 5.0, "min_dcf": 0.5}])
    assert [r["chosen"] for r in rows] == [1, 0, 0, 1]


def test_a_run_without_development_scores_is_named(tmp_path, capsys):
    a = _system(tmp_path, "lora_a")
    assert main(["--out", str(tmp_path / "o.tsv"), "--dev-trials-file", str(_trials(tmp_path)), "--run", "lora", "1", str(a)]) == 1
    err = capsys.readouterr().err
    assert str(a / "scores" / "dev_val.score") in err and "missing" in err
    assert not (tmp_path / "o.tsv").exists()


def test_a_bad_development_score_line_is_named_with_its_line(tmp_path, capsys):
    a = _system(tmp_path, "lora_a", misses=1)
    lines = (a / "scores" / "dev_val.score").read_text().splitlines()
    lines[3] = "e3 t3 not-a-number"
    (a / "scores" / "dev_val.score").write_text("\n".join(lines) + "\n")
    assert main(["--out", str(tmp_path / "o.tsv"), "--dev-trials-file", str(_trials(tmp_path)), "--run", "lora", "1", str(a)]) == 1
    err = capsys.readouterr().err
    assert f"{a / 'scores' / 'dev_val.score'}:4" in err
    assert not (tmp_path / "o.tsv").exists()


@pytest.mark.slow
def test_workflow_selects_on_dev_val_scores_only(tmp_path):
    """The select_lr checkpoint's inputs are the development list's trials and score files, nothing of
    the test lists; before the choice, no grid run is embedded or scored on the test set."""
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
    assert "vox1_O" not in line and "vox1_H" not in line and "--dev-trials-file data/vox1_dev/trials/dev_val" in line
    # before select_lr, no grid run is embedded or scored on the test set
    assert "embeddings/vox1_test" not in out.stdout and "scores/vox1_O" not in out.stdout
    assert "embeddings/vox1_dev" in out.stdout and "scores/dev_val.score" in out.stdout
    # without development speakers a grid is refused before any work
    cfg.write_text("finetune:\n  dev_speakers: 0\ncompare:\n  lr_grid: [0.5, 2.0]\n")
    out = subprocess.run([snakemake, "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path / "w"), "-n", "results/comparison.md",
                          "--configfile", str(ROOT / "conf" / "config.yaml"), str(cfg)],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "finetune.dev_speakers > 0" in out.stdout + out.stderr
