"""spectral-compare: the comparison table, per-run rows and plot from finished systems."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from spectral.scoring.compare import main, mean_std

TRIALS = ["vox1_O", "vox1_H"]


def _system(root: Path, name: str, eers: dict[str, float], dcf: float, trainable: int, seconds: list[float]) -> Path:
    d = root / "exp" / name
    (d / "scores").mkdir(parents=True)
    for t, eer in eers.items():
        metrics = {"system": name, "trials": t, "eer_percent": eer, "eer": eer / 100,
                   "min_dcf": [{"p_target": 0.01, "c_miss": 1, "c_fa": 1, "min_dcf": dcf, "threshold": 0.5}]}
        (d / "scores" / f"{t}.metrics.json").write_text(json.dumps(metrics))
    rows = ["epoch\tloss\taccuracy\tval_loss\tval_accuracy\tlr\tseconds\ttrainable_params"]
    rows += [f"{i + 1}\t1.0\t0.5\t1.0\t0.5\t0.001\t{s}\t{trainable}" for i, s in enumerate(seconds)]
    (d / "train_log.tsv").write_text("\n".join(rows) + "\n")
    return d


@pytest.fixture
def runs(tmp_path):
    args = []
    for seed, (f_o, s_o) in enumerate([(30.0, 28.0), (31.0, 29.5), (32.0, 29.0)], start=1):
        fz = _system(tmp_path, f"frozen_s{seed}", {"vox1_O": f_o, "vox1_H": 40.0 + seed}, 0.9, 1000, [10.0, 12.0])
        sp = _system(tmp_path, f"spectral_s{seed}", {"vox1_O": s_o, "vox1_H": 39.0 + seed}, 0.8, 1500, [11.0, 13.0])
        args += ["--run", "frozen", str(seed), str(fz), "--run", "spectralft", str(seed), str(sp)]
    return tmp_path, args


def test_table_holds_mean_std_paired_deltas_parameters_and_time(runs):
    root, args = runs
    assert main(["--trials", *TRIALS, "--out-dir", str(root / "results"), *args]) == 0
    md = (root / "results" / "comparison.md").read_text()
    summary = md.split("## Every run")[0]
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in summary.splitlines() if line.startswith("| ")}
    spec = rows["spectralft"]
    assert spec[1] == "1,2,3"
    assert spec[2] == "1,500" and spec[3] == "500"  # backbone params = difference from frozen's
    mean, std = mean_std([28.0, 29.5, 29.0])
    assert spec[4] == f"{mean:.2f} ± {std:.2f}"
    assert spec[5] == "0.8000 ± 0.0000"
    d_mean, d_std = mean_std([28.0 - 30.0, 29.5 - 31.0, 29.0 - 32.0])  # paired by seed
    assert spec[6] == f"{d_mean:+.2f} ± {d_std:.2f}"
    assert spec[7] == "41.00 ± 1.00"
    assert spec[9] == "-1.00 ± 0.00"  # H: 39+s vs 40+s
    assert spec[-1].rstrip(" |") == "24 ± 0"  # 11 + 13 s per run
    assert rows["frozen"][6] == "—"
    # every run has its own row, and the tsv holds the same figures
    assert md.count("`spectral_s") == 3
    tsv = (root / "results" / "comparison.tsv").read_text().splitlines()
    assert tsv[0].split("\t")[:5] == ["label", "seed", "system", "trainable_params", "train_seconds"]
    assert len(tsv) == 7
    assert tsv[2].split("\t")[5] == "28.0000"
    assert (root / "results" / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_mean_std_of_one_value_has_no_spread():
    mean, std = mean_std([3.0])
    assert mean == 3.0 and math.isnan(std)
    assert mean_std([1.0, 3.0]) == (2.0, math.sqrt(2.0))


def test_missing_metrics_file_is_named(runs, capsys):
    root, args = runs
    victim = root / "exp" / "spectral_s2" / "scores" / "vox1_H.metrics.json"
    victim.unlink()
    assert main(["--trials", *TRIALS, "--out-dir", str(root / "results"), *args]) == 1
    err = capsys.readouterr().err
    assert str(victim) in err and "missing" in err
    assert not (root / "results" / "comparison.md").exists()


def test_malformed_train_log_row_is_named_with_its_line(runs, capsys):
    root, args = runs
    log = root / "exp" / "frozen_s3" / "train_log.tsv"
    lines = log.read_text().splitlines()
    lines[2] = lines[2].replace("12.0", "twelve")
    log.write_text("\n".join(lines) + "\n")
    assert main(["--trials", *TRIALS, "--out-dir", str(root / "results"), *args]) == 1
    err = capsys.readouterr().err
    assert f"{log}:3" in err


def test_a_run_given_twice_is_refused(runs, capsys):
    root, args = runs
    assert main(["--trials", *TRIALS, "--out-dir", str(root / "results"), *args, *args[:4]]) == 1
    assert "given twice" in capsys.readouterr().err
