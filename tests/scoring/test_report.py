"""The report writes Kaldi's lines in the documented results format, a metrics json with
the same numbers and a DET plot; reruns overwrite; incomplete score files are refused."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from spectral.scoring.metrics import compute_eer, compute_min_dcf
from spectral.scoring.report import main, write_report


@pytest.fixture
def lists(tmp_path):
    rng = np.random.default_rng(5)
    out = []
    for name, n in (("vox1_o", 300), ("vox1_h", 200)):
        labels = rng.random(n) < 0.3
        labels[:2] = [True, False]
        scores = rng.normal(size=n) + 1.5 * labels
        trials = tmp_path / f"{name}.trials"
        trials.write_text("".join(f"e{i} t{i} {'target' if y else 'nontarget'}\n" for i, y in enumerate(labels)))
        score_file = tmp_path / "exp" / f"{name}.score"
        score_file.parent.mkdir(exist_ok=True)
        # shuffled order: the report matches pairs, not lines
        order = rng.permutation(n)
        score_file.write_text("".join(f"e{i} t{i} {scores[i]:.6f}\n" for i in order))
        out.append((name, str(trials), str(score_file), np.round(scores[order], 6), labels[order]))
    return tmp_path, out


BLOCK = re.compile(
    r"Equal error rate is [0-9.e+-]+%, at threshold [0-9.e+-]+\n"
    r"minDCF is \d\.\d{4} at threshold -?\d+\.\d{4} \(p-target=0\.01, c-miss=1, c-fa=1\)\n"
    r"minDCF is \d\.\d{4} at threshold -?\d+\.\d{4} \(p-target=0\.001, c-miss=1, c-fa=1\)\n"
    r"system: (\S+)\n"
    r"trials: (\S+)\n"
    r"trials-file: (\S+)\n"
    r"scores-file: (\S+)\n"
    r"counts: (\d+) trials, (\d+) target, (\d+) nontarget\n")


def test_results_file_has_one_documented_block_per_list_and_reruns_overwrite(lists):
    d, items = lists
    results = d / "results" / "vox1_eer.txt"
    argv = ["--system", "sysA", "--results", str(results)]
    for name, trials, scores, _, _ in items:
        argv += ["--list", name, trials, scores]
    assert main(argv) == 0
    text = results.read_text()
    blocks = text.split("\n\n")
    assert len(blocks) == 2
    for block, (name, trials, scores, values, labels) in zip(blocks, items):
        match = BLOCK.fullmatch(block if block.endswith("\n") else block + "\n")
        assert match, block
        assert match.groups()[:4] == ("sysA", name, trials, scores)
        assert int(match.group(5)) == len(labels) and int(match.group(6)) == labels.sum()
        eer, threshold = compute_eer(values[labels], values[~labels])
        assert block.splitlines()[0] == "Equal error rate is %.6g%%, at threshold %.6g" % (100 * eer, threshold)
    assert main(argv) == 0
    assert results.read_text() == text


def test_metrics_json_holds_kaldi_numbers(lists):
    d, items = lists
    name, trials, scores, values, labels = items[0]
    write_report("sysA", [(name, trials, scores)], out_dir=d / "out")
    metrics = json.loads((d / "out" / f"{name}.metrics.json").read_text())
    eer, threshold = compute_eer(values[labels], values[~labels])
    assert (metrics["eer"], metrics["eer_threshold"]) == (eer, threshold)
    assert metrics["eer_percent"] == 100 * eer
    assert (metrics["n_trials"], metrics["n_target"], metrics["n_nontarget"]) == \
        (len(labels), int(labels.sum()), int((~labels).sum()))
    for entry, p in zip(metrics["min_dcf"], (0.01, 0.001)):
        assert entry["p_target"] == p and entry["c_miss"] == 1 and entry["c_fa"] == 1
        assert (entry["min_dcf"], entry["threshold"]) == compute_min_dcf(values, labels, p)
    assert metrics["kaldi_lines"][0].startswith("Equal error rate is ")
    png = (d / "out" / f"{name}.det.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000
    assert sorted(p.name for p in (d / "out").iterdir()) == [f"{name}.det.png", f"{name}.metrics.json"]


def test_unscored_trial_and_unknown_pair_are_refused_and_nothing_written(lists, capsys):
    d, items = lists
    name, trials, scores, _, _ = items[0]
    lines = open(scores).read().splitlines()
    short = d / "short.score"
    short.write_text("\n".join(lines[:-1]) + "\n")
    results = d / "r.txt"
    assert main(["--system", "s", "--results", str(results), "--list", name, trials, str(short)]) == 1
    assert re.search(r"trials:\d+: trial 'e\d+ t\d+' has no score in .*short.score", capsys.readouterr().err)
    extra = d / "extra.score"
    extra.write_text("\n".join(lines + ["ghost t1 0.5"]) + "\n")
    assert main(["--system", "s", "--results", str(results), "--list", name, trials, str(extra)]) == 1
    assert f"extra.score:{len(lines) + 1}: scored pair 'ghost t1' is not in the trials" in capsys.readouterr().err
    assert not results.exists() and not (d / f"{name}.metrics.json").exists()
