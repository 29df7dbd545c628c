"""Benchmark of the metric tools: EER and minDCF over 1 M and 10 M trials, side by side.

Three ways to the same numbers, on the same synthetic trial lists (balanced target /
non-target Gaussian scores, as VoxCeleb1-O/E/H are balanced):

- **ours**: :func:`spectral.scoring.metrics.compute_eer` and ``compute_min_dcf``
  (numpy, Kaldi-exact), and ``evaluate`` (EER + minDCF at p-target 0.01 and 0.001
  sharing one sort, what ``spectral-report`` runs);
- **roc_curve**: the approach of the paper's code: scikit-learn ``roc_curve``, EER at the
  nearest crossing of the false-positive and false-negative rates, minDCF evaluated over
  the ROC points (not Kaldi's numbers: the EER differs, shown as a difference);
- **kaldi-loop**: Kaldi's ``sid/compute_min_dcf.py`` as written (Python ``sorted`` and
  ``for`` loops) and ``compute-eer``'s ``ComputeEer`` transcribed to Python.  Above
  ``--loop-max`` trials the loop runs on the first ``--loop-max`` trials only and its
  time is extrapolated linearly (an underestimate: the sort is n log n); the output says so.

Goals: ours >= 50x faster than the ``compute_min_dcf.py`` loop and >= 2x faster than the
``roc_curve`` approach.  Our numbers are checked to equal the Kaldi-loop numbers bit for bit (on the looped
trials), on continuous scores and on scores rounded to six decimals as score files hold
them (ties between targets and non-targets take a slower, exact path).

Run::

    .venv/bin/python bench/bench_scoring.py            # 1 M and 10 M trials
    .venv/bin/python bench/bench_scoring.py --small    # 100 k and 1 M, quick
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from operator import itemgetter

import numpy as np

from spectral.scoring.metrics import compute_eer, compute_min_dcf, evaluate


def kaldi_loop_min_dcf(scores: list[float], labels: list[int], p_target: float = 0.01,
                       c_miss: float = 1, c_fa: float = 1) -> tuple[float, float]:
    """sid/compute_min_dcf.py ComputeErrorRates + ComputeMinDcf, as written."""
    sorted_indexes, thresholds = zip(*sorted(
        [(index, threshold) for index, threshold in enumerate(scores)], key=itemgetter(1)))
    labels = [labels[i] for i in sorted_indexes]
    fnrs, fprs = [], []
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
    min_c_det = float("inf")
    min_c_det_threshold = thresholds[0]
    for i in range(0, len(fnrs)):
        c_det = c_miss * fnrs[i] * p_target + c_fa * fprs[i] * (1 - p_target)
        if c_det < min_c_det:
            min_c_det = c_det
            min_c_det_threshold = thresholds[i]
    c_def = min(c_miss * p_target, c_fa * (1 - p_target))
    return min_c_det / c_def, min_c_det_threshold


def kaldi_loop_eer(target_scores: np.ndarray, nontarget_scores: np.ndarray) -> tuple[float, float]:
    """compute-eer.cc ComputeEer transcribed to Python (float32 scores, sort + loop)."""
    tgt = sorted(target_scores.astype(np.float32).tolist())
    non = sorted(nontarget_scores.astype(np.float32).tolist())
    target_position, target_size = 0, len(tgt)
    while target_position + 1 < target_size:
        nontarget_size = len(non)
        nontarget_n = int(nontarget_size * target_position * 1.0 / target_size)
        nontarget_position = max(nontarget_size - 1 - nontarget_n, 0)
        if non[nontarget_position] < tgt[target_position]:
            break
        target_position += 1
    return float(np.float32(target_position * 1.0 / target_size)), float(np.float32(tgt[target_position]))


def roc_curve_metrics(scores: np.ndarray, labels: np.ndarray, p_target: float = 0.01) -> tuple[float, float]:
    """The paper code's way: roc_curve, EER at the nearest fpr/fnr crossing, minDCF over
    the ROC points.  Returns ``(eer, min_dcf)``."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores, pos_label=1)
    fnr = 1 - tpr
    eer = fpr[np.nanargmin(np.absolute(fnr - fpr))]
    c_det = fnr * p_target + fpr * (1 - p_target)
    return float(eer), float(np.min(c_det) / min(p_target, 1 - p_target))


def best_time(fn, repeats: int) -> tuple[float, object]:
    """Run ``fn`` ``repeats`` times; return the fastest wall time and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def load_note() -> str:
    load = os.getloadavg()
    return f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs"


def bench(n: int, decimals: int | None, loop_max: int, repeats: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.5
    scores = rng.normal(size=n) + 4.0 * labels  # EER about 2.3 %
    if decimals is not None:
        scores = np.round(scores, decimals)
    tgt, non = scores[labels], scores[~labels]

    t_eer, (eer, _) = best_time(lambda: compute_eer(tgt, non), repeats)
    t_dcf, (dcf, _) = best_time(lambda: compute_min_dcf(scores, labels, 0.01), repeats)
    t_both, ev = best_time(lambda: evaluate(scores, labels, (0.01, 0.001)), repeats)
    t_roc, (roc_eer, roc_dcf) = best_time(lambda: roc_curve_metrics(scores, labels), repeats)

    m = min(n, loop_max)
    s_list, l_list = scores[:m].tolist(), labels[:m].astype(int).tolist()
    start = time.perf_counter()
    loop_dcf = kaldi_loop_min_dcf(s_list, l_list, 0.01)
    t_loop_dcf = (time.perf_counter() - start) * n / m
    start = time.perf_counter()
    loop_eer = kaldi_loop_eer(scores[:m][labels[:m]], scores[:m][~labels[:m]])
    t_loop_eer = (time.perf_counter() - start) * n / m
    if m == n:
        ours_on_looped = (compute_eer(tgt, non), compute_min_dcf(scores, labels, 0.01))
    else:
        sub_s, sub_l = scores[:m], labels[:m]
        ours_on_looped = (compute_eer(sub_s[sub_l], sub_s[~sub_l]), compute_min_dcf(sub_s, sub_l, 0.01))
    agree = ours_on_looped == (loop_eer, loop_dcf)
    return dict(n=n, decimals=decimals, m=m, t_eer=t_eer, t_dcf=t_dcf, t_both=t_both, t_roc=t_roc,
                t_loop_dcf=t_loop_dcf, t_loop_eer=t_loop_eer, eer=eer, dcf=dcf, ev=ev,
                roc_eer=roc_eer, roc_dcf=roc_dcf, agree=agree)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="EER/minDCF timing: ours vs roc_curve (paper code) vs Kaldi's Python loop.",
        epilog="example: .venv/bin/python bench/bench_scoring.py --small")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000],
                        help="numbers of trials")
    parser.add_argument("--small", action="store_true",
                        help="quick run: 100 k and 1 M trials, loop on at most 200 k")
    parser.add_argument("--loop-max", type=int, default=1_000_000,
                        help="largest list the Kaldi loop runs on in full (beyond: extrapolated)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs (not the loop)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes, loop_max = args.sizes, args.loop_max
    if args.small:
        sizes, loop_max = [100_000, 1_000_000], min(loop_max, 200_000)

    print(f"bench_scoring: numpy {np.__version__}, python {platform.python_version()}, {load_note()}")
    print("times in seconds (best of %d; Kaldi loop once)" % args.repeats)
    header = (f"{'trials':>10} {'scores':>10} | {'ours EER':>9} {'ours DCF':>9} {'evaluate':>9} | "
              f"{'roc_curve':>9} {'x':>6} | {'loop DCF':>9} {'x':>6} {'loop EER':>9} {'x':>6} | Kaldi-equal")
    print(header)
    print("-" * len(header))
    results = []
    for n in sizes:
        for decimals in (None, 6):
            r = bench(n, decimals, loop_max, args.repeats, args.seed)
            results.append(r)
            loop_mark = "*" if r["m"] < n else " "
            equal = ("yes" if r["agree"] else "NO") + (f" (first {r['m']:,})" if r["m"] < n else "")
            print(f"{n:>10,} {'rounded 6' if decimals else 'continuous':>10} | "
                  f"{r['t_eer']:9.3f} {r['t_dcf']:9.3f} {r['t_both']:9.3f} | "
                  f"{r['t_roc']:9.3f} {r['t_roc'] / (r['t_eer'] + r['t_dcf']):5.1f}x | "
                  f"{r['t_loop_dcf']:8.2f}{loop_mark} {r['t_loop_dcf'] / r['t_dcf']:5.0f}x "
                  f"{r['t_loop_eer']:8.2f}{loop_mark} {r['t_loop_eer'] / r['t_eer']:5.0f}x | "
                  f"{equal}")
    print()
    print("columns: ours EER = compute_eer, ours DCF = compute_min_dcf (p-target 0.01);")
    print("  evaluate = what spectral-report runs: EER + minDCF at 0.01 and 0.001 + all DET points;")
    print("  roc_curve x = roc_curve approach (EER + minDCF 0.01) / (ours EER + ours DCF);")
    print("  loop DCF x = Kaldi compute_min_dcf.py loop / ours minDCF (goal: >= 50x);")
    print("  loop EER x = compute-eer's ComputeEer (C++ in Kaldi) transcribed to Python / ours EER,")
    print("    for information: its sort is C code (sorted) and its loop stops at the EER position;")
    print("  * = loop timed on the first --loop-max trials and extrapolated linearly (underestimate);")
    print("  Kaldi-equal = our (EER, threshold) and (minDCF, threshold) equal the loop's bit for bit")
    print("  (on the looped trials).")
    print()
    for r in results:
        print(f"{r['n']:>10,} {'rounded 6' if r['decimals'] else 'continuous':>10}: Kaldi EER "
              f"{100 * r['eer']:.4g}% vs roc_curve nearest crossing {100 * r['roc_eer']:.4g}% "
              f"(diff {100 * (r['roc_eer'] - r['eer']):+.2g} points); minDCF {r['dcf']:.4f} vs "
              f"{r['roc_dcf']:.4f}")
    print(f"end: {load_note()}")
    return 0 if all(r["agree"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
