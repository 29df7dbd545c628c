"""EER and minDCF agree with literal re-implementations of Kaldi's algorithms, and the
two command-line tools print what Kaldi's print and refuse what Kaldi's refuse."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from operator import itemgetter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral.scoring.metrics import (
    compute_eer,
    compute_eer_main,
    compute_min_dcf,
    compute_min_dcf_main,
    evaluate,
    kaldi_sorted_labels,
)


# --- Literal re-implementations, loop for loop -----------------------------------------

def kaldi_compute_eer(target_scores, nontarget_scores):
    """ivectorbin/compute-eer.cc ComputeEer, statement by statement (BaseFloat = float32)."""
    target_scores = sorted(np.float32(x) for x in target_scores)
    nontarget_scores = sorted(np.float32(x) for x in nontarget_scores)
    target_position = 0
    target_size = len(target_scores)
    while target_position + 1 < target_size:
        nontarget_size = len(nontarget_scores)
        nontarget_n = int(nontarget_size * target_position * 1.0 / target_size)
        nontarget_position = nontarget_size - 1 - nontarget_n
        if nontarget_position < 0:
            nontarget_position = 0
        if nontarget_scores[nontarget_position] < target_scores[target_position]:
            break
        target_position += 1
    threshold = target_scores[target_position]
    eer = np.float32(target_position * 1.0 / target_size)
    return float(eer), float(threshold)


def kaldi_compute_error_rates(scores, labels):
    """sid/compute_min_dcf.py ComputeErrorRates, as written."""
    sorted_indexes, thresholds = zip(*sorted(
        [(index, threshold) for index, threshold in enumerate(scores)], key=itemgetter(1)))
    labels = [labels[i] for i in sorted_indexes]
    fnrs = []
    fprs = []
    for i in range(0, len(labels)):
        if i == 0:
            fnrs.append(labels[i])
            fprs.append(1 - labels[i])
        else:
            fnrs.append(fnrs[i - 1] + labels[i])
            fprs.append(fprs[i - 1] + 1 - labels[i])
    fnrs_norm = sum(labels)
    fprs_norm = len(labels) - fnrs_norm
    fnrs = [x / float(fnrs_norm) for x in fnrs]
    fprs = [1 - x / float(fprs_norm) for x in fprs]
    return fnrs, fprs, thresholds


def kaldi_compute_min_dcf(fnrs, fprs, thresholds, p_target, c_miss, c_fa):
    """sid/compute_min_dcf.py ComputeMinDcf, as written."""
    min_c_det = float("inf")
    min_c_det_threshold = thresholds[0]
    for i in range(0, len(fnrs)):
        c_det = c_miss * fnrs[i] * p_target + c_fa * fprs[i] * (1 - p_target)
        if c_det < min_c_det:
            min_c_det = c_det
            min_c_det_threshold = thresholds[i]
    c_def = min(c_miss * p_target, c_fa * (1 - p_target))
    min_dcf = min_c_det / c_def
    return min_dcf, min_c_det_threshold


def kaldi_min_dcf(scores, is_target, p_target=0.01, c_miss=1, c_fa=1):
    fnrs, fprs, thresholds = kaldi_compute_error_rates(list(map(float, scores)),
                                                       [int(t) for t in is_target])
    return kaldi_compute_min_dcf(fnrs, fprs, thresholds, p_target, c_miss, c_fa)


# --- Small cases computed by hand --------------------------------------------------------

def test_eer_by_hand_interleaved():
    # targets 1 3 5 7, non-targets 2 4 6 8: positions 0, 1 fail (8 < 1, 6 < 3), 2 holds (4 < 5)
    eer, threshold = compute_eer([7, 3, 5, 1], [8, 2, 6, 4])
    assert eer == pytest.approx(0.5) and threshold == 5.0


def test_eer_by_hand_separated_is_zero_at_lowest_target():
    assert compute_eer([3.0, 4.0], [1.0, 2.0]) == (0.0, 3.0)


def test_eer_by_hand_never_stops_gives_last_target():
    # targets 0.5 0.7 against non-targets 0.1 0.2 0.6: 0.6 < 0.5 fails, loop ends at 1
    assert compute_eer([0.5, 0.7], [0.1, 0.2, 0.6]) == (0.5, float(np.float32(0.7)))


def test_eer_identical_scores_is_n_minus_one_over_n():
    eer, threshold = compute_eer([0.3] * 4, [0.3] * 7)
    assert eer == 0.75 and threshold == float(np.float32(0.3))


def test_eer_is_single_precision_like_kaldi():
    eer, _ = compute_eer([1, 5, 6], [2, 3, 4])  # stops at position 1 of 3
    assert eer == float(np.float32(1 / 3)) and eer != 1 / 3


def test_min_dcf_by_hand_first_minimum_wins():
    # sorted: 1 t, 2 n, 3 t, 4 n -> fnr .5 .5 1 1, fpr 1 .5 .5 0; p = .5: c_det .75 .5 .75 .5
    value, threshold = compute_min_dcf([1, 2, 3, 4], [True, False, True, False], p_target=0.5)
    assert (value, threshold) == (1.0, 2.0)


def test_min_dcf_by_hand_separated_is_zero():
    value, threshold = compute_min_dcf([0.1, 0.4, 0.35, 0.8], [False, True, False, True])
    assert (value, threshold) == (0.0, 0.35)


def test_min_dcf_ties_keep_input_order_as_kaldi():
    # Equal scores: target first -> c_det 1, .5 -> 1.0; non-target first -> c_det 0 -> 0.0
    assert compute_min_dcf([0.5, 0.5], [True, False], p_target=0.5) == (1.0, 0.5)
    assert compute_min_dcf([0.5, 0.5], [False, True], p_target=0.5) == (0.0, 0.5)


def test_sorted_labels_equal_stable_argsort_with_many_ties():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 5, size=500).astype(float)
    labels = rng.random(500) < 0.3
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_labels = kaldi_sorted_labels(scores, labels)
    np.testing.assert_array_equal(sorted_scores, scores[order])
    np.testing.assert_array_equal(sorted_labels, labels[order])


def test_nan_and_empty_classes_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        compute_eer([0.1, float("nan")], [0.2])
    with pytest.raises(ValueError, match="NaN"):
        compute_min_dcf([0.1, float("nan")], [True, False])
    with pytest.raises(ValueError, match="no target"):
        compute_eer([], [0.2])
    with pytest.raises(ValueError, match="no non-target"):
        compute_min_dcf([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="p-target"):
        compute_min_dcf([0.1, 0.2], [True, False], p_target=1.0)


# --- Property tests against the literal versions ---------------------------------------

# Scores from a handful of values (many ties, shared by both classes) or any finite float.
tie_scores = st.sampled_from([-1.0, -0.0, 0.0, 0.25, 0.5, 1.0, 3.0])
any_scores = st.floats(min_value=-1e30, max_value=1e30, allow_nan=False, width=64)
trial_lists = st.lists(st.tuples(st.one_of(tie_scores, any_scores), st.booleans()),
                       min_size=2, max_size=60).filter(
    lambda xs: any(t for _, t in xs) and not all(t for _, t in xs))
# Costs include extreme ones (1e-300) under which rounding makes c_det flat over runs.
costs = st.tuples(st.sampled_from([0.01, 0.001, 0.05, 0.5, 0.99, 1e-300]),
                  st.sampled_from([1, 1.0, 0.5, 10.0, 1e-300]), st.sampled_from([1, 1.0, 2.0, 0.1, 1e-300])).filter(
    lambda c: min(c[1] * c[0], c[2] * (1 - c[0])) > 0)  # else Kaldi divides by zero


@settings(max_examples=250, deadline=None)
@given(trial_lists)
def test_eer_equals_kaldi_literal(trials):
    scores = np.array([s for s, _ in trials])
    is_target = np.array([t for _, t in trials])
    assert compute_eer(scores[is_target], scores[~is_target]) == \
        kaldi_compute_eer(scores[is_target], scores[~is_target])


@settings(max_examples=250, deadline=None)
@given(trial_lists, costs)
def test_min_dcf_equals_kaldi_literal(trials, cost):
    p_target, c_miss, c_fa = cost
    scores = np.array([s for s, _ in trials])
    is_target = np.array([t for _, t in trials])
    assert compute_min_dcf(scores, is_target, p_target, c_miss, c_fa) == \
        kaldi_min_dcf(scores, is_target, p_target, c_miss, c_fa)


@settings(max_examples=100, deadline=None)
@given(trial_lists)
def test_evaluate_shares_one_sort_and_agrees(trials):
    scores = np.array([s for s, _ in trials])
    is_target = np.array([t for _, t in trials])
    ev = evaluate(scores, is_target, (0.01, 0.001))
    assert (ev.eer, ev.eer_threshold) == kaldi_compute_eer(scores[is_target], scores[~is_target])
    for p in (0.01, 0.001):
        assert ev.min_dcf[p][:2] == kaldi_min_dcf(scores, is_target, p)


def test_large_random_list_equals_kaldi_literal():
    rng = np.random.default_rng(7)
    is_target = rng.random(20000) < 0.1
    scores = np.round(rng.normal(size=20000) + 2 * is_target, 3)  # rounded: many ties
    assert compute_eer(scores[is_target], scores[~is_target]) == \
        kaldi_compute_eer(scores[is_target], scores[~is_target])
    assert compute_min_dcf(scores, is_target, 0.01) == kaldi_min_dcf(scores, is_target, 0.01)


# --- spectral-compute-eer ---------------------------------------------------------------

def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_compute_eer_cli_prints_kaldi_stdout_and_log_line(tmp_path, capsys):
    scores = write(tmp_path / "s", "1 target\n2 nontarget\n5 target\n3 nontarget\n6 target\n4 nontarget\n")
    assert compute_eer_main([scores]) == 0
    out, err = capsys.readouterr()
    assert out == "33.33\n"  # 100 * float32(1/3), precision(4)
    assert err.splitlines() == [f"spectral-compute-eer {scores}",
                                "Equal error rate is 33.3333%, at threshold 5"]


def test_compute_eer_cli_reads_stdin(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("0.5 target\n0.1 nontarget\n0.7 target\n"
                                                  "0.2 nontarget\n0.6 nontarget\n"))
    assert compute_eer_main(["-"]) == 0
    out, err = capsys.readouterr()
    assert out == "50\n"
    assert err.splitlines()[-1] == "Equal error rate is 50%, at threshold 0.7"


@pytest.mark.parametrize("text, message", [
    ("0.1 target\n0.2\n", ":2: invalid line (must have 2 fields"),
    ("0.1 target\n\n0.2 nontarget\n", ":2: invalid line (must have 2 fields"),
    ("0.1 target nontarget\n", ":1: invalid line (must have 2 fields"),
    ("0.1 target\nabc nontarget\n", ":2: invalid score (must be a number): 'abc'"),
    ("0.1 target\n1_0 nontarget\n", ":2: invalid score (must be a number): '1_0'"),
    ("0.1 target\nnan nontarget\n", ":2: score is NaN"),
    ("0.1 target\n0.2 impostor\n", ":2: invalid label 'impostor'"),
    ("", ": empty input"),
    ("0.1 nontarget\n0.2 nontarget\n", ": no target scores seen"),
    ("0.1 target\n", ": no non-target scores seen"),
])
def test_compute_eer_cli_refuses_bad_input_naming_file_and_line(tmp_path, capsys, text, message):
    scores = write(tmp_path / "scores.txt", text)
    assert compute_eer_main([scores]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"error: {scores}{message}" in err


def test_compute_eer_console_script_separates_stdout_and_stderr(tmp_path):
    scores = write(tmp_path / "s", "0.5 target\n0.1 nontarget\n0.7 target\n0.2 nontarget\n0.6 nontarget\n")
    script = Path(sys.executable).parent / "spectral-compute-eer"
    command = [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; from spectral.scoring.metrics import compute_eer_main as m; "
        "sys.exit(m())"]
    done = subprocess.run(command + [scores], capture_output=True, text=True, check=True)
    assert done.stdout == "50\n"
    assert "Equal error rate is 50%, at threshold 0.7" in done.stderr


# --- spectral-compute-min-dcf -----------------------------------------------------------

TRIALS = "a x target\na y nontarget\nb x nontarget\nb y target\n"


def test_compute_min_dcf_cli_prints_kaldi_format(tmp_path, capsys):
    trials = write(tmp_path / "trials", TRIALS)
    scores = write(tmp_path / "scores", "a x 1\na y 2\nb x 4\nb y 3\n")
    assert compute_min_dcf_main(["--p-target", "0.5", scores, trials]) == 0
    out, err = capsys.readouterr()
    assert out == "1.0000\n"
    assert err.splitlines() == [
        f"spectral-compute-min-dcf --p-target 0.5 {scores} {trials}",
        "minDCF is 1.0000 at threshold 2.0000 (p-target=0.5, c-miss=1, c-fa=1)"]


def test_compute_min_dcf_cli_prints_given_costs_as_kaldi(tmp_path, capsys):
    # argparse converts given values (1 -> 1.0) but not defaults, in Kaldi's script too
    trials = write(tmp_path / "trials", TRIALS)
    scores = write(tmp_path / "scores", "a x 1\na y 2\nb x 4\nb y 3\n")
    assert compute_min_dcf_main(["--c-miss", "1", "--c-fa", "2", scores, trials]) == 0
    _, err = capsys.readouterr()
    assert err.splitlines()[-1].endswith("(p-target=0.01, c-miss=1.0, c-fa=2.0)")


def test_compute_min_dcf_cli_ignores_unscored_trials_as_kaldi(tmp_path, capsys):
    trials = write(tmp_path / "trials", TRIALS + "c z target\n")
    scores = write(tmp_path / "scores", "a x 1\na y 2\nb x 4\nb y 3\n")
    assert compute_min_dcf_main(["--p-target", "0.5", scores, trials]) == 0
    assert capsys.readouterr().out == "1.0000\n"


@pytest.mark.parametrize("scores_text, trials_text, where, message", [
    ("a x 1\nq x 2\n", TRIALS, "scores", ":2: scored pair 'q x' is not in the trials"),
    ("a x 1\na y nan\n", TRIALS, "scores", ":2: score is NaN"),
    ("a x 1\na y\n", TRIALS, "scores", ":2: invalid line (must have 3 fields"),
    ("a x 1\na y 2\n", "a x target\na y impostor\n", "trials", ":2: invalid label 'impostor'"),
    ("a x 1\na y 2\n", "", "trials", ": empty input"),
    ("a x 1\nb y 2\n", TRIALS, "scores", ": no scored pair is a non-target trial"),
])
def test_compute_min_dcf_cli_refuses_bad_input(tmp_path, capsys, scores_text, trials_text, where, message):
    paths = {"scores": write(tmp_path / "scores", scores_text),
             "trials": write(tmp_path / "trials", trials_text)}
    assert compute_min_dcf_main([paths["scores"], paths["trials"]]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"error: {paths[where]}{message}" in err


def test_compute_min_dcf_cli_refuses_bad_costs(tmp_path, capsys):
    trials = write(tmp_path / "trials", TRIALS)
    scores = write(tmp_path / "scores", "a x 1\na y 2\n")
    assert compute_min_dcf_main(["--c-fa", "0", scores, trials]) == 1
    assert "c-fa must be greater than 0" in capsys.readouterr().err


def test_kaldi_printing_matches_c_formatting():
    # %.4g / %g as C++ streams print them, including Kaldi's float32 EER
    from spectral.scoring.metrics import format_eer_line, format_eer_stdout
    assert format_eer_stdout(0.0) == "0"
    assert format_eer_stdout(float(np.float32(0.0123456))) == "1.235"
    assert format_eer_line(float(np.float32(0.1)), 0.25) == "Equal error rate is 10%, at threshold 0.25"
    assert math.isclose(float(format_eer_stdout(float(np.float32(2 / 3)))), 66.67)
