"""The method comparison: ``results/comparison.{md,png,tsv}`` from finished systems (``spectral-compare``).

Each ``--run LABEL SEED EXP_DIR`` names one trained and scored system: the workflow's
compare rule passes every (method, seed) of ``config['compare']``. From each EXP_DIR it
reads ``scores/<trials>.metrics.json`` (the report stage's Kaldi EER and minDCF) and
``train_log.tsv`` (trainable parameters, training seconds), and writes:

``comparison.tsv``  one row per run: label, seed, system, trainable parameters, training
                    seconds and, per trial list, EER (%) and minDCF;
``comparison.md``   per label (in the order given): mean ± sample standard deviation over
                    its seeds of EER and minDCF on every list, the change of the mean EER
                    against ``--reference`` (the frozen backbone by default) with the
                    standard deviation of the per-seed differences (runs are paired by
                    seed), trainable parameters and training time; then every run;
``comparison.png``  per list, EER per label (mean over seeds, a dot per seed) with its 95 %
                    speaker-bootstrap interval on an axis starting at 0, and beside it
                    the paired ΔEER against ``--reference`` with its interval around zero.

With ``--trials-file NAME FILE`` for every list, ``comparison.md`` also gets the paired
speaker-bootstrap 95 % intervals (:mod:`spectral.scoring.bootstrap`) of ΔEER and ΔminDCF of
every method against ``--reference`` and against every ``--paired-with`` label (LoRA by
default), from ``scores/<trials>.score`` of every run; ``comparison_intervals.tsv`` holds them.

minDCF is the first operating point of the metrics file (p-target 0.01, c-miss = c-fa = 1).
Trainable parameters count everything the fine-tune stage trains (back-end and speaker head
included); ``backbone params`` is the difference from the reference's count, i.e. what
the method adds on top of the back-end every method trains. Nothing here computes a
metric: a missing or malformed input is an error naming the file.

Example::

    spectral-compare --trials vox1_O vox1_H --out-dir results \\
        --run frozen 1 exp/builtin_frozen_s1_21532b74 \\
        --run spectralft 1 exp/builtin_spectralft_k64_r4_s1_89d4c11d
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spectral.atomic import atomic_path, atomic_write_text
from spectral.errors import InputError, read_utf8
from spectral.logutil import command_parser, log_invocation, run_main
from spectral.scoring import bootstrap
from spectral.scoring.textfiles import InputFormatError, read_trials


@dataclass
class Run:
    """One finished system of the comparison."""

    label: str
    seed: int
    exp_dir: Path
    system: str = ""
    trainable: int = 0
    seconds: float = 0.0
    eer: dict[str, float] = field(default_factory=dict)  # percent, per trial list
    min_dcf: dict[str, float] = field(default_factory=dict)


def _read_metrics(path: Path) -> tuple[str, float, float]:
    try:
        data = json.loads(read_utf8(path))
    except InputError as err:
        if not path.exists():
            raise InputError(path, "missing (run the metrics stage of this system first)") from None
        raise err
    except (OSError, ValueError) as err:
        raise InputError(path, f"not a metrics file ({err})") from None
    try:
        return str(data["system"]), float(data["eer_percent"]), float(data["min_dcf"][0]["min_dcf"])
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise InputError(path, f"lacks the report stage's fields ({type(err).__name__}: {err})") from None


def _read_train_log(path: Path) -> tuple[int, float]:
    """(trainable parameters, total training seconds) of a train_log.tsv."""
    if not path.is_file():
        raise InputError(path, "missing (run the finetune stage of this system first)")
    rows = list(csv.DictReader(io.StringIO(read_utf8(path), newline=""), delimiter="\t"))
    if not rows:
        raise InputError(path, "holds no epochs")
    try:
        seconds = 0.0
        for line, row in enumerate(rows, start=2):
            seconds += float(row["seconds"])
        trainable = int(rows[-1]["trainable_params"])
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(path, f"malformed row ({type(err).__name__}: {err})", line=line) from None
    return trainable, seconds


def load_run(label: str, seed: int, exp_dir: str | Path, trials: list[str]) -> Run:
    """Read one system's metrics and training log."""
    run = Run(label, seed, Path(exp_dir))
    run.trainable, run.seconds = _read_train_log(run.exp_dir / "train_log.tsv")
    for name in trials:
        run.system, run.eer[name], run.min_dcf[name] = _read_metrics(run.exp_dir / "scores" / f"{name}.metrics.json")
    return run


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (nan for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def _pm(values: list[float], digits: int) -> str:
    mean, std = mean_std(values)
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _labels(runs: list[Run]) -> list[str]:
    seen: list[str] = []
    for r in runs:
        if r.label not in seen:
            seen.append(r.label)
    return seen


def write_tsv(runs: list[Run], trials: list[str], path: Path) -> None:
    cols = ["label", "seed", "system", "trainable_params", "train_seconds"]
    cols += [f"{t}_{m}" for t in trials for m in ("eer_percent", "min_dcf")]
    lines = ["\t".join(cols)]
    for r in runs:
        row = [r.label, str(r.seed), r.system, str(r.trainable), f"{r.seconds:.1f}"]
        row += [f"{v:.4f}" for t in trials for v in (r.eer[t], r.min_dcf[t])]
        lines.append("\t".join(row))
    atomic_write_text(path, "\n".join(lines) + "\n")


def _delta(runs: list[Run], ref: list[Run], trial: str) -> str:
    """Mean EER change against the reference, paired by seed, with the std of the differences."""
    ref_by_seed = {r.seed: r.eer[trial] for r in ref}
    diffs = [r.eer[trial] - ref_by_seed[r.seed] for r in runs if r.seed in ref_by_seed]
    if not diffs:
        return "n/a"
    mean, std = mean_std(diffs)
    return f"{mean:+.2f}" if math.isnan(std) else f"{mean:+.2f} ± {std:.2f}"


def markdown(runs: list[Run], trials: list[str], reference: str | None, title: str, notes: list[str]) -> str:
    labels = _labels(runs)
    by_label = {lab: [r for r in runs if r.label == lab] for lab in labels}
    ref_runs = by_label.get(reference or "", [])
    ref_trainable = ref_runs[0].trainable if ref_runs else None
    out = [f"# {title}", ""]
    out += notes + [""] if notes else []
    head = ["method", "seeds", "trainable params", "backbone params"]
    for t in trials:
        head += [f"{t} EER (%)", f"{t} minDCF"]
        if ref_runs:
            head.append(f"{t} ΔEER vs {reference}")
    head.append("training time (s)")
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lab in labels:
        rs = by_label[lab]
        trainable = sorted({r.trainable for r in rs})
        tr = "/".join(f"{t:,}" for t in trainable)
        bb = "/".join(f"{t - ref_trainable:,}" for t in trainable) if ref_trainable is not None else "n/a"
        row = [lab, ",".join(str(r.seed) for r in rs), tr, bb]
        for t in trials:
            row += [_pm([r.eer[t] for r in rs], 2), _pm([r.min_dcf[t] for r in rs], 4)]
            if ref_runs:
                row.append("—" if lab == reference else _delta(rs, ref_runs, t))
        row.append(_pm([r.seconds for r in rs], 0))
        out.append("| " + " | ".join(row) + " |")
    out += ["", "## Every run", ""]
    head = ["method", "seed", "system"] + [f"{t} EER (%)" for t in trials] + [f"{t} minDCF" for t in trials]
    head += ["trainable params", "training time (s)"]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        row = [r.label, str(r.seed), f"`{r.system}`"] + [f"{r.eer[t]:.2f}" for t in trials]
        row += [f"{r.min_dcf[t]:.4f}" for t in trials] + [f"{r.trainable:,}", f"{r.seconds:.0f}"]
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


@dataclass
class Intervals:
    """Paired speaker-bootstrap replicates of every label's EER (%) and minDCF, per trial list."""

    replicates: int
    speakers: dict[str, int]  # trial list -> speakers resampled
    eer: dict[str, dict[str, np.ndarray]]  # trial list -> label -> replicates
    dcf: dict[str, dict[str, np.ndarray]]

    def eer_interval(self, trial: str, label: str) -> tuple[float, float]:
        return bootstrap.percentile_interval(self.eer[trial][label])

    def delta(self, trial: str, label: str, against: str, metric: str = "eer") -> tuple[float, float]:
        table = self.eer if metric == "eer" else self.dcf
        return bootstrap.percentile_interval(table[trial][label] - table[trial][against])


def bootstrap_intervals(runs: list[Run], trials_files: dict[str, str], replicates: int, seed: int) -> Intervals:
    """Resample each list's speakers ``replicates`` times (one draw for every run: paired) and
    compute every label's seed-averaged EER and minDCF in each replicate."""
    eer: dict[str, dict[str, np.ndarray]] = {}
    dcf: dict[str, dict[str, np.ndarray]] = {}
    n_speakers = {}
    for j, (name, path) in enumerate(trials_files.items()):
        trials = read_trials(path)
        speakers = bootstrap.list_speakers(trials)
        n_speakers[name] = len(speakers)
        counts = bootstrap.draw_counts(len(speakers), replicates, seed + j)
        eer[name], dcf[name] = {}, {}
        for label in _labels(runs):
            scored = []
            for r in runs:
                if r.label != label:
                    continue
                score_file = r.exp_dir / "scores" / f"{name}.score"
                if not score_file.is_file():
                    raise InputError(score_file, "missing (run the score stage of this system first)")
                scored.append(bootstrap.load_scored(str(score_file), trials, speakers))
            eer[name][label], dcf[name][label] = bootstrap.replicate_metrics(scored, counts)
    return Intervals(replicates, n_speakers, eer, dcf)


def _mean_over_seeds(runs: list[Run], label: str, trial: str, metric: str) -> float:
    values = [(r.eer if metric == "eer" else r.min_dcf)[trial] for r in runs if r.label == label]
    return sum(values) / len(values)


def interval_rows(runs: list[Run], trials: list[str], iv: Intervals, against: list[str]) -> list[dict[str, str]]:
    """One row per (list, label, reference label): point differences (Kaldi metrics, mean over seeds)
    and their paired 95 % intervals."""
    rows = []
    for t in trials:
        for lab in _labels(runs):
            for ref in against:
                if ref == lab or ref not in iv.eer[t]:
                    continue
                row = {"trials": t, "method": lab, "against": ref}
                for metric, digits in (("eer", 2), ("min_dcf", 4)):
                    point = _mean_over_seeds(runs, lab, t, metric) - _mean_over_seeds(runs, ref, t, metric)
                    lo, hi = iv.delta(t, lab, ref, "eer" if metric == "eer" else "dcf")
                    row[f"d_{metric}"] = f"{point:+.{digits}f}"
                    row[f"d_{metric}_lo"] = f"{lo:+.{digits}f}"
                    row[f"d_{metric}_hi"] = f"{hi:+.{digits}f}"
                rows.append(row)
    return rows


def intervals_markdown(rows: list[dict[str, str]], iv: Intervals) -> list[str]:
    sizes = ", ".join(f"{t}: {n} speakers" for t, n in iv.speakers.items())
    out = ["", "## Paired speaker-bootstrap 95 % intervals", "",
           f"{iv.replicates} replicates; each resamples the enrollment speakers of a list with replacement "
           f"({sizes}), with all their trials, and applies the same draw to every method and seed. "
           "Differences are of the means over seeds; an interval that excludes 0 separates the two methods.", "",
           "| trials | method | against | ΔEER (points) | 95 % interval | ΔminDCF | 95 % interval |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['trials']} | {r['method']} | {r['against']} | {r['d_eer']} | [{r['d_eer_lo']}, {r['d_eer_hi']}] "
                   f"| {r['d_min_dcf']} | [{r['d_min_dcf_lo']}, {r['d_min_dcf_hi']}] |")
    return out


def plot(runs: list[Run], trials: list[str], path: Path, title: str, iv: Intervals | None = None,
         reference: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = _labels(runs)
    with_delta = iv is not None and reference is not None
    fig, axes = plt.subplots(1, 2 if with_delta else 1, squeeze=False,
                             figsize=(max(6.0, 0.9 * len(labels) + 2) * (2 if with_delta else 1), 4.4))
    ax = axes[0][0]
    offset = 0.6 / max(1, len(trials))
    for j, t in enumerate(trials):
        for i, lab in enumerate(labels):
            vals = [r.eer[t] for r in runs if r.label == lab]
            x = i + (j - (len(trials) - 1) / 2) * offset
            mean = sum(vals) / len(vals)
            if iv is not None:
                lo, hi = iv.eer_interval(t, lab)
                ax.errorbar([x], [mean], yerr=[[max(0.0, mean - lo)], [max(0.0, hi - mean)]], fmt="o", color=f"C{j}",
                            capsize=3, label=t if i == 0 else None, zorder=3)
            else:
                ax.plot([x], [mean], "o", color=f"C{j}", label=t if i == 0 else None, zorder=3)
            ax.plot([x] * len(vals), vals, "k.", markersize=3, zorder=4)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel("EER (%)" + (" with 95 % speaker-bootstrap interval" if iv is not None else ""))
    ax.set_ylim(0.0, max(r.eer[t] for r in runs for t in trials) * 1.15 + 0.5)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3, zorder=0)
    ax.legend()
    if with_delta:
        ax = axes[0][1]
        for j, t in enumerate(trials):
            for i, lab in enumerate(labels):
                if lab == reference:
                    continue
                x = i + (j - (len(trials) - 1) / 2) * offset
                point = _mean_over_seeds(runs, lab, t, "eer") - _mean_over_seeds(runs, reference, t, "eer")
                lo, hi = iv.delta(t, lab, reference)
                ax.errorbar([x], [point], yerr=[[max(0.0, point - lo)], [max(0.0, hi - point)]], fmt="o",
                            color=f"C{j}", capsize=3, label=t if i == 1 or (i == 0 and labels[0] != reference) else None)
        ax.axhline(0.0, color="k", linewidth=0.8)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_ylabel(f"ΔEER vs {reference} (points), paired 95 % interval")
        ax.set_title(f"EER change against {reference}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("spectral-compare", "Tabulate and plot EER/minDCF (mean ± std over seeds), trainable parameters and training "
                       "time of finished systems: writes comparison.md, comparison.png and comparison.tsv into --out-dir.", """\
spectral-compare --trials vox1_O vox1_H --trials-file vox1_O data/vox1_test/trials/vox1_O --trials-file vox1_H data/vox1_test/trials/vox1_H --reference frozen --drift --out-dir results --run frozen 1 exp/SYSTEM_A --run spectralft 1 exp/SYSTEM_B
""", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", nargs=3, action="append", required=True, metavar=("LABEL", "SEED", "EXP_DIR"),
                   help="one finished system: method label, its seed and its exp/<system> directory (repeat)")
    p.add_argument("--trials", nargs="+", required=True, help="trial list names, as in exp/<system>/scores/<name>.metrics.json")
    p.add_argument("--reference", default="frozen", help="label the ΔEER column and the backbone parameter count are taken against")
    p.add_argument("--title", default="Method comparison", help="heading of the table and the plot")
    p.add_argument("--note", action="append", default=[], help="a line of text under the heading (repeat)")
    p.add_argument("--out-dir", required=True, help="where comparison.{md,png,tsv} go")
    p.add_argument("--trials-file", nargs=2, action="append", default=[], metavar=("NAME", "FILE"),
                   help="the Kaldi trials file of list NAME (repeat for every --trials list): turns on the paired "
                        "speaker-bootstrap intervals, computed from exp/<system>/scores/NAME.score of every run")
    p.add_argument("--paired-with", nargs="*", default=["lora"],
                   help="labels every method is also compared with, beside --reference (those present)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates")
    p.add_argument("--bootstrap-seed", type=int, default=1, help="seed of the speaker draws")
    p.add_argument("--drift", action="store_true",
                   help="also read exp/<system>/drift/drift.json of every run: a drift section in comparison.md "
                   "and comparison_drift.png (spectral.scoring.drift_summary)")
    return p


def compare(args: argparse.Namespace) -> Path:
    runs = []
    for label, seed, exp_dir in args.run:
        try:
            seed_value = int(seed)
        except ValueError:
            raise InputError("--run", f"seed of {label!r} must be an integer, got {seed!r}") from None
        runs.append(load_run(label, seed_value, exp_dir, args.trials))
    pairs = [(r.label, r.seed) for r in runs]
    dup = next((p for p in pairs if pairs.count(p) > 1), None)
    if dup:
        raise InputError("--run", f"{dup[0]!r} seed {dup[1]} is given twice")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reference = args.reference if any(r.label == args.reference for r in runs) else None
    files = dict(args.trials_file)
    iv = None
    md = markdown(runs, args.trials, reference, args.title, args.note)
    # spectral drift of every run (spectral/scoring/drift_summary.py), read before anything is written
    drift_md = _drift_section(args.run, args.title, out) if getattr(args, "drift", False) else ""
    if files:
        missing = [t for t in args.trials if t not in files]
        if missing:
            raise InputError("--trials-file", f"no trials file for {', '.join(missing)}")
        if args.bootstrap < 10:
            raise InputError("--bootstrap", f"needs at least 10 replicates, got {args.bootstrap}")
        iv = bootstrap_intervals(runs, {t: files[t] for t in args.trials}, args.bootstrap, args.bootstrap_seed)
        against = [lab for lab in [reference, *args.paired_with] if lab and any(r.label == lab for r in runs)]
        rows = interval_rows(runs, args.trials, iv, list(dict.fromkeys(against)))
        md += "\n".join(intervals_markdown(rows, iv)) + "\n"
        cols = ["trials", "method", "against", "d_eer", "d_eer_lo", "d_eer_hi", "d_min_dcf", "d_min_dcf_lo", "d_min_dcf_hi"]
        atomic_write_text(out / "comparison_intervals.tsv",
                      "\n".join(["\t".join(cols)] + ["\t".join(r[c] for c in cols) for r in rows]) + "\n")
    md += drift_md
    write_tsv(runs, args.trials, out / "comparison.tsv")
    atomic_write_text(out / "comparison.md", md)
    plot(runs, args.trials, out / "comparison.png", args.title, iv, reference)
    return out / "comparison.md"


def _drift_section(run_args: list[list[str]], title: str, out: Path) -> str:
    """The drift section of comparison.md; writes comparison_drift.png (spectral.scoring.drift_summary)."""
    from spectral.scoring.drift_summary import drift_section, load_drifts, plot_drift_map

    drifts = load_drifts([(label, int(seed), exp_dir) for label, seed, exp_dir in run_args])
    plot_drift_map(drifts, out / "comparison_drift.png", f"{title}\nshare of ||ΔW||² outside both top-k subspaces")
    return "\n" + drift_section(drifts)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spectral-compare``."""
    args = build_parser().parse_args(argv)
    log_invocation("spectral-compare", args)

    def work() -> None:
        written = compare(args)
        logging.getLogger("spectral-compare").info("wrote %s, comparison.png and comparison.tsv", written)

    return run_main("spectral-compare", work, errors=(InputFormatError,))


if __name__ == "__main__":
    sys.exit(main())
