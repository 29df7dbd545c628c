"""Command-line plumbing shared by spectral-pretrain and spectral-finetune.

Both take the pipeline's settings as ``--config`` (a YAML/JSON file laid out like
``conf/config.yaml``, or an inline JSON object, which is how the workflow passes them) plus
``--set section.key=value`` overrides; the resolved settings are checked before any work
and logged after the arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable

import torch

from spectral.logutil import log_invocation, run_main
from spectral.train.config import RunConfig, apply_overrides, load_config_arg, resolve_config
from spectral.train.loop import TrainingStopped

log = logging.getLogger("spectral.train")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--config, --set, --noise-dir, --rir-dir, --noise-manifest, --rir-manifest, --precision, --num-workers, --no-progress."""
    parser.add_argument(
        "--config", default=None,
        help="settings: a YAML/JSON file laid out like conf/config.yaml (sections model, backend, adapter, "
             "pretrain, finetune, augment, and data, which the workflow adds; others are ignored) or an inline JSON object",
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one setting (value parsed as YAML); repeatable")
    parser.add_argument("--noise-dir", default=None,
                        help="noise directory (MUSAN or any audio directory) for augmentation (overrides augment.noise_dir)")
    parser.add_argument("--rir-dir", default=None,
                        help="room impulse response directory (RIRS_NOISES or any audio directory; overrides augment.rir_dir)")
    parser.add_argument("--noise-manifest", default=None,
                        help="the augment stage's noise recordings (lhotse .jsonl.gz); used instead of augment.noise_dir")
    parser.add_argument("--rir-manifest", default=None,
                        help="the augment stage's RIR recordings (lhotse .jsonl.gz); used instead of augment.rir_dir")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default=None,
                        help="autocast precision of this stage (overrides <stage>.precision; fp16 adds a gradient scaler)")
    parser.add_argument("--num-workers", type=int, default=None, metavar="N",
                        help="DataLoader workers reading crops (overrides <stage>.num_workers; the crops do not change)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def resolve(parser: argparse.ArgumentParser, args: argparse.Namespace, section: str | None = None) -> RunConfig:
    """The checked settings of ``args``; a bad value ends the program with parser.error (status 2).

    ``section`` (pretrain or finetune): where ``--precision`` and ``--num-workers`` go.
    """
    overrides = list(args.overrides)
    if section is not None:
        if getattr(args, "precision", None) is not None:
            overrides.append(f"{section}.precision={args.precision}")
        if getattr(args, "num_workers", None) is not None:
            overrides.append(f"{section}.num_workers={args.num_workers}")
    try:
        data = apply_overrides(load_config_arg(args.config), overrides)
        cfg = resolve_config(data)
    except (ValueError, json.JSONDecodeError) as err:
        parser.error(str(err))
    if args.noise_dir:
        cfg.augment.noise_dir = args.noise_dir
    if args.rir_dir:
        cfg.augment.rir_dir = args.rir_dir
    return cfg


def log_config(prog: str, args: argparse.Namespace, cfg: RunConfig, rank: int = 0) -> None:
    """Log the arguments, then the resolved settings (rank 0 only)."""
    if rank == 0:
        log_invocation(prog, args)
        logging.getLogger(prog).info("resolved config: %s", json.dumps(cfg.to_dict(), sort_keys=True))
    else:
        logging.basicConfig(level=logging.WARNING)


def set_threads(threads: int) -> None:
    if threads > 0:
        torch.set_num_threads(threads)


def run_stage(prog: str, work: Callable[[], object]) -> int:
    """Run ``work``: bad input or a stopped run become ``<prog>: error: ...`` and status 1."""
    from spectral.svd import SvdError

    return run_main(prog, work, errors=(TrainingStopped, SvdError))
