"""Choose each method's backbone learning rate on the development trials (stage select_lr).

The comparison (``config['compare']``) trains every method once per value of ``lr_grid``
(``finetune.backbone_lr_scale``, the backbone's lr as a multiple of the back-end's) with the
first seed, on training speakers without the held-out development speakers, and this stage
keeps, per method, the value with the lowest EER on the development list ``dev_val``
(ties: the lower minDCF, then the smaller value). It reads **only** the development list: its
trials file and each run's ``scores/<dev list>.score``, evaluated with the report stage's Kaldi
EER and minDCF (p-target 0.01). The test lists are never read, so a grid run that is not kept
needs neither the test set's embeddings nor its scores.

Writes ``lr_selection.tsv``: one row per (method, value) with the development EER and minDCF
and a ``chosen`` column (1 for the kept value). Example::

    spectral-select-lr --dev-trials dev_val --dev-trials-file data/vox1_dev/trials/dev_val \\
        --out results/lr_selection.tsv --run lora 0.5 exp/builtin_lora_r6_s1_0a1b2c3d --run lora 2 exp/builtin_lora_r6_s1_4e5f6a7b
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from spectral.atomic import atomic_write_text
from spectral.errors import InputError, read_utf8
from spectral.logutil import command_parser, log_invocation, run_main


def read_dev_metrics(exp_dir: str | Path, dev_trials: str, trials_file: str | Path) -> tuple[float, float]:
    """(EER %, minDCF at p-target 0.01) of ``exp_dir/scores/<dev_trials>.score`` on ``trials_file``."""
    from spectral.scoring.report import P_TARGETS, evaluate_list  # numpy: not at import (--help stays fast)

    path = Path(exp_dir) / "scores" / f"{dev_trials}.score"
    if not path.is_file():
        raise InputError(path, "missing (run the score stage of this system first)")
    ev = evaluate_list(trials_file, path)  # names the file and line of a bad score or trial
    eer, dcf = 100.0 * ev.eer, ev.min_dcf[P_TARGETS[0]][0]
    if not (math.isfinite(eer) and math.isfinite(dcf)):
        raise InputError(path, f"gives a non-finite EER or minDCF ({eer}, {dcf})")
    return eer, dcf


def choose(rows: list[dict]) -> list[dict]:
    """Mark per label the row with the lowest EER (ties: lower minDCF, then smaller value) chosen."""
    for row in rows:
        row["chosen"] = 0
    for label in dict.fromkeys(r["label"] for r in rows):
        best = min((r for r in rows if r["label"] == label), key=lambda r: (r["eer"], r["min_dcf"], r["value"]))
        best["chosen"] = 1
    return rows


def select(runs: list[tuple[str, float, str]], dev_trials: str, trials_file: str | Path) -> list[dict]:
    """Rows (label, value, dev EER, dev minDCF, chosen) for every run, in the order given."""
    rows = []
    for label, value, exp_dir in runs:
        eer, dcf = read_dev_metrics(exp_dir, dev_trials, trials_file)
        rows.append({"label": label, "value": value, "eer": eer, "min_dcf": dcf, "exp_dir": str(exp_dir)})
    return choose(rows)


def format_tsv(rows: list[dict], dev_trials: str) -> str:
    lines = [f"label\tbackbone_lr_scale\t{dev_trials}_eer_percent\t{dev_trials}_min_dcf\tchosen\texp_dir"]
    lines += [f"{r['label']}\t{r['value']:g}\t{r['eer']:.4f}\t{r['min_dcf']:.4f}\t{r['chosen']}\t{r['exp_dir']}" for r in rows]
    return "\n".join(lines) + "\n"


def read_selection(path: str | Path) -> dict[str, float]:
    """label -> chosen backbone_lr_scale of an ``lr_selection.tsv``."""
    chosen = {}
    text = read_utf8(path).splitlines()
    for i, line in enumerate(text[1:], start=2):
        f = line.split("\t")
        if len(f) < 5:
            raise InputError(path, f"expected 6 tab-separated fields, got {len(f)}", line=i)
        if f[4] == "1":
            chosen[f[0]] = float(f[1])
    return chosen


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("spectral-select-lr", "Keep, per method, the backbone learning-rate scale with the lowest EER on the development "
                       "trial list (only that list's trials and scores are read); writes lr_selection.tsv.", """\
spectral-select-lr --dev-trials dev_val --dev-trials-file data/vox1_dev/trials/dev_val --out results/lr_selection.tsv \\
    --run lora 0.5 exp/SYSTEM_A --run lora 2 exp/SYSTEM_B
""", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", nargs=3, action="append", required=True, metavar=("LABEL", "VALUE", "EXP_DIR"),
                   help="one system scored on the development list: method label, its backbone_lr_scale, its "
                   "exp/<system> (repeat)")
    p.add_argument("--dev-trials", default="dev_val", help="name of the development trial list (exp/<system>/scores/<name>.score)")
    p.add_argument("--dev-trials-file", required=True, help="the development list's Kaldi trials file")
    p.add_argument("--out", required=True, help="the lr_selection.tsv to write")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spectral-select-lr``."""
    args = build_parser().parse_args(argv)
    log_invocation("spectral-select-lr", args)

    def work() -> None:
        runs = []
        for label, value, exp_dir in args.run:
            try:
                v = float(value)
            except ValueError:
                raise InputError("--run", f"value of {label!r} must be a number, got {value!r}") from None
            runs.append((label, v, exp_dir))
        rows = select(runs, args.dev_trials, args.dev_trials_file)
        out = Path(args.out)
        atomic_write_text(out, format_tsv(rows, args.dev_trials))
        for r in rows:
            if r["chosen"]:
                print(f"spectral-select-lr: {r['label']}: backbone_lr_scale {r['value']:g} "
                      f"({args.dev_trials} EER {r['eer']:.2f} %)", file=sys.stderr)

    return run_main("spectral-select-lr", work)


if __name__ == "__main__":
    sys.exit(main())
