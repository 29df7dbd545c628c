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
``comparison.png``  EER per label and list: a bar at the mean, a line for ± one standard
                    deviation, a dot per seed.

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

from spectral.errors import InputError, read_utf8
from spectral.atomic import atomic_path, atomic_write_text
from spectral.logutil import log_invocation, run_main


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


def plot(runs: list[Run], trials: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = _labels(runs)
    width = 0.8 / len(trials)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(labels) + 2), 4.2))
    for j, t in enumerate(trials):
        xs, means, stds = [], [], []
        for i, lab in enumerate(labels):
            vals = [r.eer[t] for r in runs if r.label == lab]
            mean, std = mean_std(vals)
            x = i + (j - (len(trials) - 1) / 2) * width
            xs.append(x)
            means.append(mean)
            stds.append(0.0 if math.isnan(std) else std)
            ax.plot([x] * len(vals), vals, "k.", markersize=3, zorder=3)
        ax.bar(xs, means, width * 0.9, yerr=stds, capsize=3, label=t, zorder=2)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel("EER (%)")
    lows = [r.eer[t] for r in runs for t in trials]
    ax.set_ylim(max(0.0, min(lows) - 3.0), max(lows) + 2.0)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3, zorder=0)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spectral-compare",
        description="Tabulate and plot EER/minDCF (mean ± std over seeds), trainable parameters and training "
        "time of finished systems: writes comparison.md, comparison.png and comparison.tsv into --out-dir.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--run", nargs=3, action="append", required=True, metavar=("LABEL", "SEED", "EXP_DIR"),
                   help="one finished system: method label, its seed and its exp/<system> directory (repeat)")
    p.add_argument("--trials", nargs="+", required=True, help="trial list names, as in exp/<system>/scores/<name>.metrics.json")
    p.add_argument("--reference", default="frozen", help="label the ΔEER column and the backbone parameter count are taken against")
    p.add_argument("--title", default="Method comparison", help="heading of the table and the plot")
    p.add_argument("--note", action="append", default=[], help="a line of text under the heading (repeat)")
    p.add_argument("--out-dir", required=True, help="where comparison.{md,png,tsv} go")
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
    write_tsv(runs, args.trials, out / "comparison.tsv")
    atomic_write_text(out / "comparison.md", markdown(runs, args.trials, reference, args.title, args.note))
    plot(runs, args.trials, out / "comparison.png", args.title)
    return out / "comparison.md"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spectral-compare``."""
    args = build_parser().parse_args(argv)
    log_invocation("spectral-compare", args)

    def work() -> None:
        written = compare(args)
        logging.getLogger("spectral-compare").info("wrote %s, comparison.png and comparison.tsv", written)

    return run_main("spectral-compare", work)


if __name__ == "__main__":
    sys.exit(main())
