"""What spectral-pretrain and spectral-finetune share: command-line plumbing, the training data
set-up (:func:`speaker_data`) and the layout of ``final.pt`` (:func:`final_checkpoint`).

Both take the pipeline's settings as ``--config`` (a YAML/JSON file laid out like
``conf/config.yaml``, or an inline JSON object, which is how the workflow passes them) plus
``--set section.key=value`` overrides; the resolved settings are checked before any work
and logged after the arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable

import torch

from pathlib import Path
from typing import Any

from spectral.logutil import log_invocation, run_main
from spectral.models.speaker import CHECKPOINT_FORMAT
from spectral.train.config import RunConfig, TrainConfig, apply_overrides, load_config_arg, resolve_config
from spectral.errors import InputError

log = logging.getLogger("spectral.train")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--config, --set, --noise-dir, --rir-dir, --noise-manifest, --rir-manifest, --precision, --num-workers, --no-progress."""
    parser.add_argument(
        "--config", default=None,
        help="settings: a YAML/JSON file laid out like conf/config.yaml (sections model, backend, adapter, "
             "pretrain, finetune, augment, each laid over the defaults, and data, which the workflow adds; the "
             "pipeline's other sections are ignored, unknown ones refused) or an inline JSON object",
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
    """The checked settings of ``args``, every section laid over the pipeline's defaults.

    ``section`` (pretrain or finetune): where ``--precision`` and ``--num-workers`` go.
    A config file that cannot be read (missing, not UTF-8, a YAML syntax error) ends the
    program with ``<prog>: error: <file>:<line>: ...`` and status 1; a bad or inconsistent
    value with parser.error (status 2), naming the config file it came from.
    """
    overrides = list(args.overrides)
    if section is not None:
        if getattr(args, "precision", None) is not None:
            overrides.append(f"{section}.precision={args.precision}")
        if getattr(args, "num_workers", None) is not None:
            overrides.append(f"{section}.num_workers={args.num_workers}")
    try:
        data = load_config_arg(args.config)
    except InputError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        sys.exit(1)
    try:
        cfg = resolve_config(apply_overrides(data, overrides))
    except (ValueError, TypeError) as err:
        where = f"{args.config}: " if args.config and not args.config.lstrip().startswith("{") else ""
        parser.error(f"{where}{err}")
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
    """Run ``work``: bad input or a stopped run (:class:`TrainingStopped`, an InputError)
    become ``<prog>: error: ...`` and status 1."""
    return run_main(prog, work)


def check_feature_dim(data, n_mels: int) -> None:
    """Refuse fbank features of another dimension than the builtin backbone's input
    (``model.builtin.n_mels``) before any work, naming feats.scp (``data``: a SpeakerData)."""
    first = next(iter(data.feats), None) if getattr(data, "feats", None) else None
    if first is None:
        return
    bins = data._load_fbank(first).shape[1]
    if bins != n_mels:
        raise InputError(data.data_dir / "feats.scp", f"holds {bins}-dimensional fbank features, but "
                                                      f"model.builtin.n_mels is {n_mels}: set features.num_mel_bins "
                                                      f"and model.builtin.n_mels alike and rerun the features stage")


def speaker_data(cfg: RunConfig, tcfg: TrainConfig, data_dir: Path, utt2spk: dict[str, str], kind: str,
                 speakers: list[str] | None = None, noise_manifest: str | None = None,
                 rir_manifest: str | None = None):
    """(training, held-out) :class:`~spectral.train.data.SpeakerData` of ``utt2spk``'s utterances:
    ``tcfg.val_utts_per_speaker`` of each speaker held out, augmentation on the training part
    only (``noise_manifest``/``rir_manifest``, the augment stage's, take the place of
    augment.noise_dir/rir_dir); fbank of another dimension than the builtin backbone's is refused."""
    from spectral.train.data import SpeakerData, split_validation

    train_utts, val_utts = split_validation(utt2spk, tcfg.val_utts_per_speaker, tcfg.seed)
    kw = dict(kind=kind, crop_seconds=tcfg.crop_seconds, augment=cfg.augment,
              noise=noise_manifest or cfg.augment.noise_dir, rir=rir_manifest or cfg.augment.rir_dir)
    train_data = SpeakerData(data_dir, utts=train_utts, speakers=speakers, **kw)
    val_data = SpeakerData(data_dir, utts=val_utts, speakers=train_data.speakers, **{**kw, "augment": None})
    if kind == "fbank":
        check_feature_dim(train_data, cfg.model.builtin.n_mels)
    return train_data, val_data


def final_checkpoint(state: dict, config: dict, speakers: list[str], system: str, pretext: dict | None = None,
                     **extra: Any) -> dict[str, Any]:
    """The ``final.pt`` of a training stage (format: :mod:`spectral.models.speaker`): the model's
    ``state``, the settings it was trained with, its speakers in head order and its system name,
    then the stage's own entries (``pretext``, ``init``, ``train_data``, ``adapters``, ...)."""
    return {"format": CHECKPOINT_FORMAT, "model": state, **({"pretext": pretext} if pretext else {}),
            "config": config, "speakers": speakers, "system": system, **extra}
