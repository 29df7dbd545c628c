"""Report stage: metrics json, DET plot and ``results/vox1_eer.txt`` (``spectral-report``).

Reads, per trial list, the trials file (``enroll test target|nontarget``) and the score
file of the score stage (``enroll test score``).  Every scored pair must be a trial and
every trial must be scored.  Metrics are Kaldi's (:mod:`spectral.scoring.metrics`):
EER as ``compute-eer``, minDCF as ``sid/compute_min_dcf.py`` at p-target 0.01 and
0.001 (c-miss = c-fa = 1).

Writes, per trial list ``<name>`` into ``--out-dir`` (default: the score file's folder):

- ``<name>.metrics.json``: ``system``, ``trials``, ``trials_file``, ``scores_file``,
  ``n_trials``, ``n_target``, ``n_nontarget``, ``eer`` (fraction), ``eer_percent``,
  ``eer_threshold``, ``min_dcf`` (a list of ``{p_target, c_miss, c_fa, min_dcf,
  threshold}``) and ``kaldi_lines`` (the lines below, as printed);
- ``<name>.det.png``: the DET curve on normal-deviate axes, with the EER point and
  the minDCF operating points marked.

and, with ``--results``, one text file for all lists, one block per list in the order
given, blocks separated by one empty line.  Each block is::

    Equal error rate is 2.345%, at threshold 0.412345
    minDCF is 0.2345 at threshold 0.5123 (p-target=0.01, c-miss=1, c-fa=1)
    minDCF is 0.3456 at threshold 0.6012 (p-target=0.001, c-miss=1, c-fa=1)
    system: <system name>
    trials: <list name>
    trials-file: <path of the trials file>
    scores-file: <path of the score file>
    counts: <n> trials, <n> target, <n> nontarget

The first line is exactly Kaldi ``compute-eer``'s log line (``%g`` numbers), the next
two exactly ``compute_min_dcf.py``'s stderr line; the rest are ``key: value``.  Every
output is written to a temporary name and renamed, and a rerun overwrites, never appends.

Example::

    spectral-report --system wavlm_large-spectralft-k256-r16-s0 \\
        --results results/vox1_eer.txt \\
        --list vox1_o data/vox1_test/trials/vox1_o exp/sys/scores/vox1_o.score
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
from pathlib import Path

import numpy as np

from spectral.scoring.metrics import (
    Evaluation,
    evaluate,
    format_eer_line,
    format_min_dcf_line,
)
from spectral.atomic import atomic_write_bytes
from spectral.logutil import command_parser, log_command, run_main
from spectral.scoring.textfiles import (
    InputFormatError,
    atomic_write_text,
    label_scores,
    read_pair_scores,
    read_trials,
)

log = logging.getLogger(__name__)

P_TARGETS = (0.01, 0.001)
C_MISS = 1
C_FA = 1


def evaluate_list(trials_path: str | Path, scores_path: str | Path) -> Evaluation:
    """Read a trials file and its score file; return their :class:`Evaluation`.

    Refuses a scored pair not in the trials, a trial without score, and a list without
    targets or non-targets.
    """
    trials = read_trials(trials_path)
    scored = read_pair_scores(scores_path)
    is_target = label_scores(scored, trials, require_all=True)
    if not is_target.any():
        raise InputFormatError(f"{trials_path}: no target trial is scored")
    if is_target.all():
        raise InputFormatError(f"{trials_path}: no non-target trial is scored")
    return evaluate(scored.scores, is_target, P_TARGETS, C_MISS, C_FA)


def kaldi_lines(ev: Evaluation) -> list[str]:
    """The EER line of ``compute-eer`` and one ``compute_min_dcf.py`` line per p-target."""
    lines = [format_eer_line(ev.eer, ev.eer_threshold)]
    for p_target, (value, threshold, _) in ev.min_dcf.items():
        lines.append(format_min_dcf_line(value, threshold, p_target, ev.c_miss, ev.c_fa))
    return lines


def metrics_dict(ev: Evaluation, system: str, name: str, trials_path: str | Path,
                 scores_path: str | Path) -> dict:
    """Return the metrics json content (see the module docstring) of one trial list."""
    return {
        "system": system,
        "trials": name,
        "trials_file": str(trials_path),
        "scores_file": str(scores_path),
        "n_trials": ev.rates.n_target + ev.rates.n_nontarget,
        "n_target": ev.rates.n_target,
        "n_nontarget": ev.rates.n_nontarget,
        "eer": ev.eer,
        "eer_percent": 100.0 * ev.eer,
        "eer_threshold": ev.eer_threshold,
        "min_dcf": [{"p_target": p, "c_miss": ev.c_miss, "c_fa": ev.c_fa, "min_dcf": v,
                     "threshold": t} for p, (v, t, _) in ev.min_dcf.items()],
        "kaldi_lines": kaldi_lines(ev),
    }


def results_block(ev: Evaluation, system: str, name: str, trials_path: str | Path,
                  scores_path: str | Path) -> str:
    """Return one block of the results file (see the module docstring), newline-ended."""
    lines = kaldi_lines(ev) + [
        f"system: {system}",
        f"trials: {name}",
        f"trials-file: {trials_path}",
        f"scores-file: {scores_path}",
        f"counts: {ev.rates.n_target + ev.rates.n_nontarget} trials, {ev.rates.n_target} target, "
        f"{ev.rates.n_nontarget} nontarget",
    ]
    return "\n".join(lines) + "\n"


def _det_points(ev: Evaluation, max_points: int = 4000) -> np.ndarray:
    """Sorted positions to draw: dense near both ends of the curve, bounded in number."""
    n = ev.rates.fnr.size
    ends = np.geomspace(1, n, max_points // 4).astype(np.int64) - 1
    middle = np.linspace(0, n - 1, max_points // 2).astype(np.int64)
    return np.unique(np.concatenate([ends, n - 1 - ends, middle]))


def plot_det(ev: Evaluation, path: str | Path, title: str) -> None:
    """Draw the DET curve (normal-deviate axes, miss vs false-alarm probability) with the
    EER and minDCF points marked, into the PNG ``path`` (atomically)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    # Axes reach down to the decade of the smallest non-zero rate (not below 0.01%).
    smallest = 1.0 / max(ev.rates.n_target, ev.rates.n_nontarget)
    floor = max(1e-4, 10.0 ** np.floor(np.log10(smallest)))
    ticks = np.array([0.01, 0.1, 0.5, 1, 2, 5, 10, 20, 40, 60, 80]) / 100
    ticks = ticks[ticks >= floor]

    def deviate(p):
        return norm.ppf(np.clip(p, floor, 1 - floor))

    index = _det_points(ev)
    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=110)
    ax.plot(deviate(ev.rates.fpr[index]), deviate(ev.rates.fnr[index]), lw=1.4, label="DET")
    ax.plot(deviate(ev.eer), deviate(ev.eer), "o", color="C3",
            label=f"EER {100 * ev.eer:.3g}% (thr {ev.eer_threshold:.4g})")
    for marker, (p_target, (value, threshold, i)) in zip("sD^v", ev.min_dcf.items()):
        ax.plot(deviate(ev.rates.fpr[i]), deviate(ev.rates.fnr[i]), marker, mfc="none", ms=8,
                label=f"minDCF(p={p_target:g}) {value:.4f} (thr {threshold:.4g})")
    lim = deviate(np.array([floor, 0.8]))
    ax.plot(lim, lim, ":", color="grey", lw=0.8)
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    labels = [f"{100 * t:g}" for t in ticks]
    ax.set_xticks(deviate(ticks), labels)
    ax.set_yticks(deviate(ticks), labels)
    ax.set_xlabel("False alarm probability (%)")
    ax.set_ylabel("Miss probability (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, lw=0.4, alpha=0.6)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def write_report(system: str, lists: list[tuple[str, str, str]], out_dir: str | Path | None = None,
                 results: str | Path | None = None) -> dict[str, dict]:
    """Evaluate each ``(name, trials, scores)`` and write its json and DET plot (into
    ``out_dir`` or the score file's folder), then the ``results`` file when given.

    Returns name -> metrics dict.  Everything is evaluated before anything is written,
    so a bad list leaves no partial report.
    """
    names = [name for name, _, _ in lists]
    if len(set(names)) != len(names):
        raise ValueError(f"trial list names repeat: {names}")
    evaluated = [(name, trials, scores, evaluate_list(trials, scores)) for name, trials, scores in lists]
    out: dict[str, dict] = {}
    blocks = []
    for name, trials, scores, ev in evaluated:
        folder = Path(out_dir) if out_dir is not None else Path(scores).parent
        folder.mkdir(parents=True, exist_ok=True)
        metrics = metrics_dict(ev, system, name, trials, scores)
        atomic_write_text(folder / f"{name}.metrics.json", json.dumps(metrics, indent=2) + "\n")
        plot_det(ev, folder / f"{name}.det.png", f"{system} / {name}")
        blocks.append(results_block(ev, system, name, trials, scores))
        for line in metrics["kaldi_lines"]:
            log.info("%s: %s", name, line)
        out[name] = metrics
    if results is not None:
        Path(results).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(results, "\n".join(blocks))
        log.info("wrote %s", results)
    return out


def main(argv: list[str] | None = None) -> int:
    """``spectral-report``: metrics json, DET plot and results file of trial lists."""
    parser = command_parser("spectral-report", "Kaldi EER and minDCF (p-target 0.01 and 0.001) of scored trial lists: a "
                            "metrics json and a DET plot per list, and a results file.", """\
spectral-report --system SYSTEM --out-dir exp/SYSTEM/scores --results exp/SYSTEM/results.txt --list vox1_O data/vox1_test/trials/vox1_O exp/SYSTEM/scores/vox1_O.score
""")
    parser.add_argument("--system", required=True, help="system name written into the reports")
    parser.add_argument("--list", dest="lists", nargs=3, action="append", required=True,
                        metavar=("NAME", "TRIALS", "SCORES"),
                        help="a trial list: its name, trials file and score file (repeatable)")
    parser.add_argument("--out-dir", help="folder of <name>.metrics.json and <name>.det.png "
                        "(default: the score file's folder)")
    parser.add_argument("--results", help="results text file, e.g. results/vox1_eer.txt")
    args = parser.parse_args(argv)
    log_command(parser.prog, argv)
    return run_main(parser.prog, lambda: write_report(args.system, [tuple(x) for x in args.lists],
                                                      args.out_dir, args.results), errors=(ValueError,))
