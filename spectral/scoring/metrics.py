"""EER and minDCF exactly as Kaldi computes them, vectorised (stage: score, report).

Reads: labelled scores (``<score> target|nontarget``) for ``spectral-compute-eer``;
a score file (``enroll test score``) and a trials file (``enroll test target|nontarget``)
for ``spectral-compute-min-dcf``.  Writes: the metric to stdout, a log line to stderr.

**EER** is Kaldi's ``compute-eer`` (``src/ivectorbin/compute-eer.cc``, ``ComputeEer``):
scores are single precision; target and non-target scores are sorted ascending; for
target position ``p = 0, 1, ..., n_tgt - 2`` the non-target position is
``n_non - 1 - trunc(n_non * p / n_tgt)`` (clamped at 0), and the first ``p`` where that
non-target score is below the target score gives ``EER = p / n_tgt`` and the threshold
``target[p]`` (``p = n_tgt - 1`` when none does).  No interpolation.  Output as Kaldi's: ``100 * EER`` to stdout with 4
significant digits (C++ ``precision(4)``, i.e. ``%.4g``; Kaldi omits the final newline,
we print one) and ``Equal error rate is X%, at threshold Y`` (``%g``) to stderr.

**minDCF** is Kaldi's ``egs/sre08/v1/sid/compute_min_dcf.py`` (``ComputeErrorRates``,
``ComputeMinDcf``): scores are double precision and sorted ascending *stably* (ties keep
file order); at every sorted position ``i`` the miss rate is the share of targets among
positions ``0..i`` and the false-alarm rate the share of non-targets after ``i``;
``c_det = c_miss * fnr * p_target + c_fa * fpr * (1 - p_target)`` and the first minimum,
divided by ``min(c_miss * p_target, c_fa * (1 - p_target))``, is the minDCF, reported
with the score at that position as threshold.  Output as Kaldi's: ``{:.4f}`` to stdout,
``minDCF is X at threshold Y (p-target=..., c-miss=..., c-fa=...)`` to stderr.

How it is fast and still exact:

- EER: the two sorts are numpy's vectorised sorts; Kaldi's stopping test is monotone
  in the target position, so a bisection finds Kaldi's first stopping position with
  O(log n) evaluations of that same test.
- minDCF: the stable order is built without a stable argsort of all scores: targets and
  non-targets are each sorted and merged by ``searchsorted``; only values held by both a
  target and a non-target need their file order, and only the elements holding them are
  sorted again, by (value, input index).  ``c_det`` is then evaluated, with Kaldi's
  arithmetic, only where its first minimum can lie (see :func:`compute_min_dcf`);
  :func:`compute_error_rates` gives every position for the DET curve.

Both agree with literal loop re-implementations bit for bit (``tests/scoring``).

Differences from Kaldi, on bad input only: a NaN score, an unknown trial label, a
trials or score line without three fields and costs whose normaliser
``min(c_miss * p_target, c_fa * (1 - p_target))`` is 0 are refused with a message naming
what is wrong (Kaldi sorts NaN with undefined results, counts any label other than
``target`` as a non-target, and stops with a Python traceback).

Example::

    spectral-compute-eer exp/sys/scores/vox1_o.eer_input
    spectral-compute-min-dcf --p-target 0.01 exp/sys/scores/vox1_o.score data/vox1_test/trials/vox1_o
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import numpy as np

from spectral.errors import InputError
from spectral.logutil import command_parser, run_main
from spectral.scoring.textfiles import (
    InputFormatError,
    display_name,
    label_scores,
    read_labelled_scores,
    read_pair_scores,
    read_trials,
)


def _check_scores(scores: np.ndarray, what: str) -> None:
    if np.isnan(scores).any():
        raise ValueError(f"{what} contain NaN")


def compute_eer(target_scores: np.ndarray, nontarget_scores: np.ndarray) -> tuple[float, float]:
    """Kaldi ``ComputeEer``: take target and non-target scores (any float arrays).

    Returns ``(eer, threshold)``: the EER as a fraction rounded to single precision as
    Kaldi stores it (multiply by 100 for Kaldi's printed value) and the threshold, a
    single-precision target score.  Refuses empty score sets and NaN.
    """
    tgt = np.sort(np.asarray(target_scores, dtype=np.float32).ravel())
    non = np.sort(np.asarray(nontarget_scores, dtype=np.float32).ravel())
    if tgt.size == 0:
        raise ValueError("no target scores")
    if non.size == 0:
        raise ValueError("no non-target scores")
    _check_scores(tgt, "target scores")
    _check_scores(non, "non-target scores")
    return _eer_of_sorted(tgt, non)


def _eer_of_sorted(tgt: np.ndarray, non: np.ndarray) -> tuple[float, float]:
    """``ComputeEer`` after its two sorts: ascending float32 target/non-target scores."""
    n_tgt, n_non = tgt.size, non.size

    def below(position: int) -> bool:
        # ssize_t nontarget_n = nontarget_size * target_position * 1.0 / target_size;
        nontarget_n = int(float(n_non * position) / float(n_tgt))
        nontarget_position = max(n_non - 1 - nontarget_n, 0)
        return bool(non[nontarget_position] < tgt[position])

    # Kaldi tests positions 0, 1, ..., n_tgt - 2 in turn and stops at the first where the
    # test holds.  The test is monotone in the position (targets ascend while the chosen
    # non-target descends), so bisection finds the same first position in O(log n).
    lo, hi = 0, n_tgt - 1          # answer in [lo, hi]; hi = n_tgt - 1 means "never"
    while lo < hi:
        mid = (lo + hi) // 2
        if below(mid):
            hi = mid
        else:
            lo = mid + 1
    hit = lo
    eer = float(np.float32(hit * 1.0 / n_tgt))
    return eer, float(tgt[hit])


def _candidates(scores: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Ascending indices of the ``scores`` that may equal one of ``values``: every one
    that does, and a few that do not.

    A hash set of the values, one bit per slot so that it stays in cache, discards most
    scores with a few integer operations each, in blocks that reuse their buffers.
    """
    bits = int(min(27, max(16, np.ceil(np.log2(values.size * 32)))))
    multiplier, shift = np.uint64(0x9E3779B97F4A7C15), np.uint64(64 - bits)
    block = min(1 << 16, max(scores.size, values.size))
    buffer = np.empty(block, dtype=np.float64)
    slot = buffer.view(np.uint64)
    byte = np.empty(block, dtype=np.uint64)
    packed = np.empty(block, dtype=np.uint8)

    def hash_slots(x: np.ndarray) -> np.ndarray:
        n = x.size
        np.add(x, 0.0, out=buffer[:n])  # turns -0.0 into 0.0, which it equals
        np.multiply(slot[:n], multiplier, out=slot[:n])
        np.right_shift(slot[:n], shift, out=slot[:n])
        return slot[:n]

    table = np.zeros(1 << bits, dtype=bool)
    for start in range(0, values.size, block):
        table[hash_slots(values[start:start + block]).view(np.int64)] = True
    table = np.packbits(table, bitorder="little")
    seven, three = np.uint64(7), np.uint64(3)
    found = []
    for start in range(0, scores.size, block):
        chunk = scores[start:start + block]
        n = chunk.size
        where = hash_slots(chunk)
        np.right_shift(where, three, out=byte[:n])
        np.take(table, byte[:n].view(np.int64), out=packed[:n])
        np.bitwise_and(where, seven, out=where)
        np.right_shift(packed[:n], where.astype(np.uint8), out=packed[:n])
        found.append(np.flatnonzero(packed[:n] & 1) + start)
    return np.concatenate(found)


def _stable_order(scores: np.ndarray, is_target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels in the order of a stable ascending sort of ``scores``, without that sort.

    Takes float64 scores and a bool target array of the same size.  Returns ``(tgt, non,
    sorted_is_target)``: the sorted target and non-target scores and the labels in
    Kaldi's order (the scores in that order are ``tgt`` and ``non`` merged by the labels).
    """
    tgt = np.sort(np.compress(is_target, scores))  # compress: faster than a mask index
    non = np.sort(np.compress(~is_target, scores))
    # Each target goes after every smaller target and every smaller non-target; equal
    # targets are interchangeable, and so are equal non-targets.
    below = np.searchsorted(non, tgt, side="left")
    # Targets whose value a non-target holds too (only targets with some non-target at
    # or above them can be; they are the first `prefix` ones).
    prefix = int(np.searchsorted(below, non.size))
    shared = np.compress(non[below[:prefix]] == tgt[:prefix], tgt[:prefix])
    position = below
    position += np.arange(tgt.size, dtype=np.int64)
    sorted_is_target = np.zeros(scores.size, dtype=bool)
    sorted_is_target[position] = True
    # That places the targets of a value held by both classes before its non-targets;
    # Kaldi's stable sort keeps their input order instead.  Re-order only the elements
    # holding such values.
    if shared.size:
        values = shared[np.concatenate(([True], shared[1:] != shared[:-1]))]
        candidates = _candidates(scores, values)
        candidate_scores = scores[candidates]
        order = np.argsort(candidate_scores, kind="stable")     # by (value, input index)
        candidate_scores = candidate_scores[order]
        group = np.searchsorted(values, candidate_scores)
        member = values[np.minimum(group, values.size - 1)] == candidate_scores
        group, index = group[member], candidates[order][member]
        rank = np.arange(group.size, dtype=np.int64) - np.searchsorted(group, group)
        start = (np.searchsorted(tgt, values, side="left")
                 + np.searchsorted(non, values, side="left"))
        sorted_is_target[start[group] + rank] = is_target[index]
    return tgt, non, sorted_is_target


def _as_arrays(scores: np.ndarray, is_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    is_target = np.asarray(is_target, dtype=bool).ravel()
    if scores.shape != is_target.shape:
        raise ValueError(f"{scores.size} scores but {is_target.size} labels")
    _check_scores(scores, "scores")
    n_target = int(np.count_nonzero(is_target))
    if n_target == 0:
        raise ValueError("no target scores")
    if n_target == scores.size:
        raise ValueError("no non-target scores")
    return scores, is_target


def kaldi_sorted_labels(scores: np.ndarray, is_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort as ``ComputeErrorRates`` does: ascending score, ties in input order.

    Takes float scores and a parallel bool target array (both classes present, no NaN).
    Returns ``(sorted_scores, sorted_is_target)``, equal to a stable argsort of ``scores``
    applied to both.
    """
    scores, is_target = _as_arrays(scores, is_target)
    tgt, non, sorted_is_target = _stable_order(scores, is_target)
    sorted_scores = np.empty(scores.size, dtype=np.float64)
    sorted_scores[sorted_is_target] = tgt
    sorted_scores[~sorted_is_target] = non
    return sorted_scores, sorted_is_target


def _rates(sorted_is_target: np.ndarray, n_target: int, n_nontarget: int) -> tuple[np.ndarray, np.ndarray]:
    """``fnrs`` and ``fprs`` of ``ComputeErrorRates`` from the labels in sorted order."""
    so_far = np.cumsum(sorted_is_target, dtype=np.int64)                  # targets so far
    fnr = np.divide(so_far, float(n_target))
    np.subtract(np.arange(1, so_far.size + 1, dtype=np.int64), so_far, out=so_far)  # non-targets
    fpr = np.divide(so_far, float(n_nontarget))
    np.subtract(1, fpr, out=fpr)
    return fnr, fpr


def _c_det(fnr: np.ndarray, fpr: np.ndarray, p_target: float, c_miss: float, c_fa: float,
           in_place: bool = False) -> np.ndarray:
    """``c_miss * fnr * p_target + c_fa * fpr * (1 - p_target)`` with Kaldi's rounding
    (products are commutative in IEEE arithmetic, so the operand order is free)."""
    c_det = np.multiply(fnr, c_miss, out=fnr if in_place else None)
    c_det *= p_target
    fa = np.multiply(fpr, c_fa, out=fpr if in_place else None)
    fa *= 1 - p_target
    c_det += fa
    return c_det


@dataclass(frozen=True)
class ErrorRates:
    """Kaldi's ``ComputeErrorRates`` output at every sorted position.

    ``thresholds`` ascending scores; ``is_target`` their labels; ``fnr`` miss rate
    (targets at or below); ``fpr`` false-alarm rate (non-targets above);
    ``n_target``/``n_nontarget`` counts.
    """

    thresholds: np.ndarray
    is_target: np.ndarray
    fnr: np.ndarray
    fpr: np.ndarray
    n_target: int
    n_nontarget: int


def compute_error_rates(scores: np.ndarray, is_target: np.ndarray) -> ErrorRates:
    """Vectorised ``ComputeErrorRates``: take scores and a bool target array.

    Returns :class:`ErrorRates`; refuses NaN and a set without targets or non-targets.
    """
    thresholds, sorted_is_target = kaldi_sorted_labels(scores, is_target)
    n_target = int(np.count_nonzero(sorted_is_target))
    n_nontarget = sorted_is_target.size - n_target
    fnr, fpr = _rates(sorted_is_target, n_target, n_nontarget)
    return ErrorRates(thresholds, sorted_is_target, fnr, fpr, n_target, n_nontarget)


@dataclass(frozen=True)
class Evaluation:
    """EER and minDCF of one trial list, with the error rates behind them.

    ``eer`` is a fraction (Kaldi's single-precision value), ``min_dcf`` maps each
    p-target to ``(min_dcf, threshold, sorted position)``; ``rates`` are the
    :class:`ErrorRates` (for the DET curve); ``c_miss``/``c_fa`` the costs used.
    """

    eer: float
    eer_threshold: float
    min_dcf: dict[float, tuple[float, float, int]]
    rates: ErrorRates
    c_miss: float
    c_fa: float


def evaluate(scores: np.ndarray, is_target: np.ndarray, p_targets: tuple[float, ...] = (0.01, 0.001),
             c_miss: float = 1, c_fa: float = 1) -> Evaluation:
    """EER (as ``compute-eer``) and minDCF at each p-target (as ``compute_min_dcf.py``)
    of scores and a parallel bool target array, sharing one sort.  Returns an
    :class:`Evaluation`; refuses NaN and a set without targets or non-targets.
    """
    for p_target in p_targets:
        _check_costs(p_target, c_miss, c_fa)
    rates = compute_error_rates(scores, is_target)
    # The sorted targets/non-targets in double precision stay sorted in single precision.
    tgt = rates.thresholds[rates.is_target].astype(np.float32)
    non = rates.thresholds[~rates.is_target].astype(np.float32)
    eer, eer_threshold = _eer_of_sorted(tgt, non)
    min_dcf = {p: min_dcf_from_rates(rates, p, c_miss, c_fa) for p in p_targets}
    return Evaluation(eer, eer_threshold, min_dcf, rates, c_miss, c_fa)


def _check_costs(p_target: float, c_miss: float, c_fa: float) -> None:
    # The same checks as compute_min_dcf.py's CheckArgs, and (unlike Kaldi, which prints
    # nan) NaN and infinite costs refused: no detection cost can be computed from them.
    for name, value in (("c-fa", c_fa), ("c-miss", c_miss), ("p-target", p_target)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if c_fa <= 0:
        raise ValueError(f"c-fa must be greater than 0, got {c_fa!r}")
    if c_miss <= 0:
        raise ValueError(f"c-miss must be greater than 0, got {c_miss!r}")
    if p_target <= 0 or p_target >= 1:
        raise ValueError(f"p-target must be greater than 0 and less than 1, got {p_target!r}")
    if min(c_miss * p_target, c_fa * (1 - p_target)) == 0:  # Kaldi: ZeroDivisionError
        raise ValueError(f"c-miss * p-target or c-fa * (1 - p-target) is 0 in floating point "
                         f"(p-target={p_target!r}, c-miss={c_miss!r}, c-fa={c_fa!r})")


def min_dcf_from_rates(rates: ErrorRates, p_target: float = 0.01, c_miss: float = 1,
                       c_fa: float = 1) -> tuple[float, float, int]:
    """Vectorised ``ComputeMinDcf`` over :class:`ErrorRates`.

    Returns ``(min_dcf, threshold, index)``: the normalised minimum cost, the score at
    which it first occurs and that sorted position (for plotting).
    """
    _check_costs(p_target, c_miss, c_fa)
    c_det = _c_det(rates.fnr, rates.fpr, p_target, c_miss, c_fa)
    index = int(np.argmin(c_det))  # the first minimum, as Kaldi's strict '<'
    c_def = min(c_miss * p_target, c_fa * (1 - p_target))
    return float(c_det[index] / c_def), float(rates.thresholds[index]), index


def compute_min_dcf(scores: np.ndarray, is_target: np.ndarray, p_target: float = 0.01,
                    c_miss: float = 1, c_fa: float = 1) -> tuple[float, float]:
    """Kaldi ``compute_min_dcf.py``: take scores and a bool target array (input order
    matters only for ties, as in Kaldi).  Returns ``(min_dcf, threshold)``; refuses NaN
    and a set without targets or non-targets.

    Kaldi evaluates ``c_det`` at every sorted position.  Along the sorted positions a
    non-target step never raises ``c_det`` and a target step never lowers it (every
    operation of the formula rounds monotonically), so its first minimum lies at the
    last position of a run of non-targets (or at position 0 when that is a target), or,
    when rounding makes ``c_det`` flat, earlier in that same run.  Only those positions
    are evaluated: one per target instead of one per trial, with the same arithmetic.
    """
    _check_costs(p_target, c_miss, c_fa)
    scores, is_target = _as_arrays(scores, is_target)
    tgt, non, sorted_is_target = _stable_order(scores, is_target)
    n, n_target, n_nontarget = scores.size, tgt.size, non.size
    target_at = np.flatnonzero(sorted_is_target)                      # ascending positions
    previous = np.concatenate(([-1], target_at[:-1]))
    run_end = np.flatnonzero(target_at - previous > 1)                # targets after non-targets
    # Candidate positions in ascending order, with the targets up to each.
    position = [target_at[run_end] - 1]
    targets = [run_end]
    run_start = [previous[run_end] + 1]
    if target_at[0] == 0:
        position.insert(0, np.array([0]))
        targets.insert(0, np.array([1]))
        run_start.insert(0, np.array([-1]))  # a target: no run of non-targets to walk back
    if target_at[-1] < n - 1:
        position.append(np.array([n - 1]))
        targets.append(np.array([n_target]))
        run_start.append(np.array([target_at[-1] + 1]))
    position, targets, run_start = (np.concatenate(x).astype(np.int64) for x in (position, targets, run_start))
    nontargets = position + 1 - targets
    c_det = _c_det(targets / float(n_target), 1 - nontargets / float(n_nontarget),
                   p_target, c_miss, c_fa)
    k = int(np.argmin(c_det))  # the first minimum, as Kaldi's strict '<'
    best, at, t = c_det[k], int(position[k]), int(targets[k])
    if run_start[k] >= 0 and at > run_start[k] and _c_det(
            np.array([t / float(n_target)]), np.array([1 - (at - t) / float(n_nontarget)]),
            p_target, c_miss, c_fa)[0] == best:
        # Rounding made c_det flat at the end of this non-target run (only extreme costs
        # can): the first position of the flat stretch is Kaldi's.
        run = np.arange(run_start[k], at + 1, dtype=np.int64)
        run_c_det = _c_det(np.full(run.size, t / float(n_target)),
                           1 - (run + 1 - t) / float(n_nontarget), p_target, c_miss, c_fa)
        at = int(run[np.argmax(run_c_det == best)])
    c_def = min(c_miss * p_target, c_fa * (1 - p_target))
    threshold = tgt[t - 1] if sorted_is_target[at] else non[at - t]
    return float(best / c_def), float(threshold)


def format_eer_stdout(eer: float) -> str:
    """Kaldi's stdout of ``compute-eer``: ``100 * eer`` with ``precision(4)``."""
    return "%.4g" % (100.0 * eer)


def format_eer_line(eer: float, threshold: float) -> str:
    """Kaldi's log line of ``compute-eer``: ``Equal error rate is X%, at threshold Y``."""
    return "Equal error rate is %.6g%%, at threshold %.6g" % (100.0 * eer, threshold)


def format_min_dcf_stdout(min_dcf: float) -> str:
    """Kaldi's stdout of ``compute_min_dcf.py``: ``{:.4f}``."""
    return "{0:.4f}".format(min_dcf)


def format_min_dcf_line(min_dcf: float, threshold: float, p_target: float = 0.01,
                        c_miss: float = 1, c_fa: float = 1) -> str:
    """Kaldi's stderr line of ``compute_min_dcf.py`` (costs printed as Python prints them)."""
    return ("minDCF is {0:.4f} at threshold {1:.4f} (p-target={2}, c-miss={3}, "
            "c-fa={4})".format(min_dcf, threshold, p_target, c_miss, c_fa))


def _log_command(prog: str, argv: list[str]) -> None:
    # Kaldi tools echo their command line to stderr first.
    print(" ".join([prog, *argv]), file=sys.stderr, flush=True)


def compute_eer_main(argv: list[str] | None = None) -> int:
    """``spectral-compute-eer SCORES``: Kaldi ``compute-eer``; returns the exit status."""
    parser = command_parser("spectral-compute-eer", "Equal error rate exactly as Kaldi's compute-eer (no interpolation): "
                            "100*EER to stdout (4 significant digits), 'Equal error rate is X%%, at "
                            "threshold Y' to stderr.", """\
paste trials scores | awk '{print $6, $3}' | spectral-compute-eer -
""")
    parser.add_argument("scores", metavar="SCORES",
                        help="file of lines '<score> target|nontarget', or - for stdin")
    argv = sys.argv[1:] if argv is None else list(argv)
    _log_command(parser.prog, argv)
    args = parser.parse_args(argv)

    def work() -> None:
        scores, is_target = read_labelled_scores(args.scores)
        if not is_target.any():
            raise InputFormatError(f"{display_name(args.scores)}: no target scores seen")
        if is_target.all():
            raise InputFormatError(f"{display_name(args.scores)}: no non-target scores seen")
        eer, threshold = compute_eer(scores[is_target], scores[~is_target])
        print(format_eer_line(eer, threshold), file=sys.stderr)
        print(format_eer_stdout(eer))

    return run_main(parser.prog, work, errors=(ValueError,))


def compute_min_dcf_main(argv: list[str] | None = None) -> int:
    """``spectral-compute-min-dcf [--p-target P] [--c-miss C] [--c-fa C] SCORES TRIALS``:
    Kaldi ``sid/compute_min_dcf.py``; returns the exit status."""
    parser = command_parser("spectral-compute-min-dcf", "Normalised minimum detection cost exactly as Kaldi's "
                            "sid/compute_min_dcf.py: the value to stdout ({:.4f}), 'minDCF is X at "
                            "threshold Y (...)' to stderr.", """\
spectral-compute-min-dcf --p-target 0.01 exp/SYSTEM/scores/vox1_O.score data/vox1_test/trials/vox1_O
""", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    # Defaults are ints as in Kaldi, so they print as Kaldi prints them (c-miss=1).
    parser.add_argument("--p-target", type=float, default=0.01,
                        help="prior probability of a target trial")
    parser.add_argument("--c-miss", type=float, default=1, help="cost of a missed detection")
    parser.add_argument("--c-fa", type=float, default=1, help="cost of a false alarm")
    parser.add_argument("scores", metavar="SCORES", help="lines 'enroll test score'")
    parser.add_argument("trials", metavar="TRIALS", help="lines 'enroll test target|nontarget'")
    argv = sys.argv[1:] if argv is None else list(argv)
    _log_command(parser.prog, argv)
    args = parser.parse_args(argv)

    def work() -> None:
        try:
            _check_costs(args.p_target, args.c_miss, args.c_fa)
        except ValueError as err:
            raise InputError("command line", str(err)) from None
        trials = read_trials(args.trials)
        scored = read_pair_scores(args.scores)
        is_target = label_scores(scored, trials)
        if not is_target.any():
            raise InputFormatError(f"{args.scores}: no scored pair is a target trial")
        if is_target.all():
            raise InputFormatError(f"{args.scores}: no scored pair is a non-target trial")
        min_dcf, threshold = compute_min_dcf(scored.scores, is_target, args.p_target,
                                             args.c_miss, args.c_fa)
        print(format_min_dcf_stdout(min_dcf))
        print(format_min_dcf_line(min_dcf, threshold, args.p_target, args.c_miss, args.c_fa),
              file=sys.stderr)

    return run_main(parser.prog, work, errors=(ValueError,))
