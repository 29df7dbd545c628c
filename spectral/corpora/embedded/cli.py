"""``spectral-make-corpus``: the command-line entry of stage corpus (embedded default).

Writes the target corpus (VoxCeleb1 layout, trial lists, noise, rir) to ``--target-dir``
and, where ``--pretrain-dir`` is given, the pre-training corpus there (a shipped backbone needs
none); see :mod:`.generate` for the files.
Settings not given come from the ``--size`` preset (:mod:`.config`); every value is
checked before any work.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from spectral.logutil import log_command, run_main

from .config import PRESETS, resolve_config
from .generate import generate_corpora, prepare

log = logging.getLogger("spectral.corpora.embedded")

EXAMPLE = """example:
  spectral-make-corpus --target-dir corpus/embedded/vox1 --pretrain-dir corpus/embedded/pretrain \\
      --size default --seed 20250107 --nj 2

  Writes corpus/embedded/vox1/{wav/,vox1_meta.csv,veri_test2.txt,list_test_hard2.txt,noise/,rir/,...}
  and corpus/embedded/pretrain/{wav/,vox1_meta.csv,...}; the same seed gives the same bytes.
  Without --pretrain-dir only the target corpus is written (the same bytes as with it).
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spectral-make-corpus``."""
    p = argparse.ArgumentParser(
        prog="spectral-make-corpus",
        description="Generate the embedded synthetic speaker corpora (target in VoxCeleb1 layout, "
        "plus a pre-training corpus), deterministically from a seed, offline.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--target-dir", type=Path, required=True, metavar="DIR", help="where the target corpus goes (replaced)"
    )
    p.add_argument(
        "--pretrain-dir", type=Path, metavar="DIR",
        help="where the pre-training corpus goes (replaced); omitted: no pre-training corpus"
    )
    p.add_argument("--size", choices=sorted(PRESETS), default="default", help="size preset (default: %(default)s)")
    p.add_argument("--seed", type=int, metavar="N", help="seed of everything generated (default: 20250107)")
    p.add_argument("--nj", type=int, metavar="N", help="parallel processes (default: 2)")
    g = p.add_argument_group("sizes (default: from --size)")
    g.add_argument("--n-pretrain-speakers", type=int, metavar="N", help="pre-training speakers")
    g.add_argument("--pretrain-utts-per-speaker", type=int, metavar="N", help="utterances per pre-training speaker")
    g.add_argument("--n-dev-speakers", type=int, metavar="N", help="dev (training) speakers of the target corpus")
    g.add_argument("--n-test-speakers", type=int, metavar="N", help="test speakers of the target corpus (>= 4)")
    g.add_argument("--utts-per-speaker", type=int, metavar="N", help="utterances per target speaker")
    g.add_argument("--sessions-per-speaker", type=int, metavar="N", help="sessions (videos) per target speaker")
    g.add_argument("--min-duration", type=float, metavar="S", help="shortest target utterance, seconds")
    g.add_argument("--max-duration", type=float, metavar="S", help="longest target utterance, seconds")
    g.add_argument("--n-trials-o", type=int, metavar="N", help="trials of veri_test2.txt (O-style)")
    g.add_argument("--n-trials-h", type=int, metavar="N", help="trials of list_test_hard2.txt (H-style)")
    d = p.add_argument_group("difficulty of the target channel")
    d.add_argument("--snr-db-min", type=float, metavar="DB", help="lowest SNR of background noise, dB (default: 0)")
    d.add_argument("--snr-db-max", type=float, metavar="DB", help="highest SNR of background noise, dB (default: 30)")
    d.add_argument("--reverb-prob", type=float, metavar="P", help="reverberant-room chance per session (default: 0.6)")
    d.add_argument("--telephone-prob", type=float, metavar="P", help="telephone-line chance per session (default: 0.2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


_SETTINGS = (
    "seed", "nj", "n_pretrain_speakers", "pretrain_utts_per_speaker", "n_dev_speakers", "n_test_speakers",
    "utts_per_speaker", "sessions_per_speaker", "min_duration", "max_duration", "snr_db_min", "snr_db_max",
    "reverb_prob", "telephone_prob", "n_trials_o", "n_trials_h",
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the stage; returns 0 on success (bad settings exit with status 2 and a message, a
    failed write, e.g. a full disk, with status 1)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    log_command("spectral-make-corpus", argv)
    try:
        cfg = resolve_config(args.size, **{k: getattr(args, k) for k in _SETTINGS})
    except ValueError as e:
        parser.error(str(e))
    log.info("resolved settings: %s", json.dumps(cfg.__dict__))
    try:
        prepared = prepare(cfg, args.target_dir, args.pretrain_dir)
    except ValueError as e:  # refused before anything is written (trial capacity, directories)
        parser.error(str(e))
    return run_main("spectral-make-corpus", lambda: generate_corpora(
        cfg, args.target_dir, args.pretrain_dir, progress=not args.no_progress, prepared=prepared))


if __name__ == "__main__":
    sys.exit(main())
