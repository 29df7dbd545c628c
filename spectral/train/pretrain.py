"""Stage pretrain: train the built-in backbone on the pre-training corpus.

Only where no pre-trained checkpoint is configured (the embedded default). The objective is
``pretrain.objective``: ``speaker`` trains the backbone with a speaker back-end and AAM head;
``masked`` is self-supervised masked prediction of the input fbank
(:mod:`spectral.train.masked`), the back-end and head staying at their seeded random
initialisation. Reads ``<data-dir>/{utt2spk,feats.scp}`` (``wav.scp`` too with waveform
augmentation); writes ``<exp-dir>/final.pt`` (format in :mod:`spectral.models.speaker`; with
objective masked the back-end and head it holds are untrained, ``config.train.objective``
says so, and the prediction head is stored under ``"pretext"``), ``train_log.tsv`` (objective
masked: loss and val_loss are the masked L1 loss, accuracy the share of masked frames predicted
better than by the crop's mean visible frame) and ``checkpoints/last.pt`` (see
:mod:`spectral.train.loop`). Settings: the ``model``,
``backend``, ``pretrain`` and ``augment`` sections. Command line: ``spectral-pretrain``;
shell stage: ``steps/pretrain.sh``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from spectral.logutil import command_parser
from spectral.data.kaldi import data_dir_utt2spk
from spectral.errors import InputError
from spectral.models import SpeakerModel
from spectral.models.builtin import initial_backbone
from spectral.train.common import (add_common_arguments, final_checkpoint, log_config, resolve,
                                   run_stage, set_threads, speaker_data)
from spectral.train.config import RunConfig, identity_train_dict
from spectral.train.loop import atomic_save, setup_distributed, train

log = logging.getLogger("spectral-pretrain")

EXAMPLE = """\
spectral-pretrain --data-dir data/pretrain --exp-dir exp/pretrain/builtin --config conf/config.yaml
spectral-pretrain --data-dir data/pretrain --exp-dir exp/pretrain/builtin --set pretrain.epochs=2
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("spectral-pretrain", __doc__.split("\n\n")[0], EXAMPLE)
    parser.add_argument("--data-dir", required=True, help="Kaldi data directory of the pre-training corpus")
    parser.add_argument("--exp-dir", required=True, help="output directory (final.pt, train_log.tsv, checkpoints/)")
    add_common_arguments(parser)
    return parser


def pretrain(cfg: RunConfig, data_dir: str | Path, exp_dir: str | Path, progress: bool = True,
             noise_manifest: str | None = None, rir_manifest: str | None = None) -> Path:
    """Pre-train the built-in backbone on ``data_dir``; return the path of the written final.pt.

    ``noise_manifest``/``rir_manifest`` (the augment stage's) take the place of augment.noise_dir/rir_dir.
    """
    if cfg.model.backbone != "builtin":
        raise InputError("model.backbone", f"the pretrain stage trains the builtin backbone only (model.backbone is {cfg.model.backbone!r})")
    tcfg = cfg.pretrain
    info = setup_distributed(tcfg)
    set_threads(tcfg.threads)
    exp_dir = Path(exp_dir)
    final = exp_dir / "final.pt"
    data_dir = Path(data_dir)
    train_data, val_data = speaker_data(cfg, tcfg, data_dir, data_dir_utt2spk(data_dir, allow_empty=True), "fbank",
                                        noise_manifest=noise_manifest, rir_manifest=rir_manifest)
    if info.main:
        log.info("%s: %d speakers, %d training and %d held-out utterances", data_dir, train_data.num_speakers,
                 len(train_data), len(val_data))
    # seeds the generator, then draws the backbone, then (below) the back-end: the svd stage
    # re-creates this initialisation from the seed to measure what pre-training changed
    model = SpeakerModel(initial_backbone(cfg.model.builtin, tcfg.seed), cfg.backend, train_data.num_speakers)
    objective = None
    if tcfg.objective == "masked":
        from spectral.train.masked import MaskedObjective, MaskedPredictionHead

        model.pretext = MaskedPredictionHead(cfg.model.builtin)  # drawn after the rest: same init as speaker
        for part in (model.backend, model.head):
            part.requires_grad_(False)
        objective = MaskedObjective(model, tcfg.mask_prob, tcfg.mask_span)
        if info.main:
            log.info("objective masked: %.0f %% of frames in spans of %d; the back-end and head stay untrained",
                     100 * tcfg.mask_prob, tcfg.mask_span)
    fingerprint = {
        "stage": "pretrain", "model": cfg.model.to_dict(), "backend": cfg.backend.to_dict(),
        "train": identity_train_dict(tcfg), "augment": cfg.augment.to_dict(),
        "speakers": train_data.speakers, "utts": len(train_data),
    }

    def write_final(trained, history) -> None:
        state = {k: v.detach().cpu() for k, v in trained.state_dict().items()}
        pretext = {k[len("pretext."):]: state.pop(k) for k in list(state) if k.startswith("pretext.")}
        config = {"model": cfg.model.to_dict(), "backend": cfg.backend.to_dict(), "adapter": None,
                  "train": tcfg.to_dict(), "augment": cfg.augment.to_dict(), "ssl_config": None}
        # init: what re-creates the initial backbone, initial_backbone(model.builtin, seed)
        init = {"function": "spectral.models.builtin.initial_backbone", "seed": tcfg.seed, "torch": str(torch.__version__)}
        atomic_save(final_checkpoint(state, config, train_data.speakers, f"pretrain_{cfg.model.backbone}", pretext,
                                     init=init), final)
        log.info("wrote %s (validation loss %.4f, accuracy %.4f)", final, history[-1]["val_loss"],
                 history[-1]["val_accuracy"])

    train(model, train_data, val_data, tcfg, exp_dir, fingerprint, write_final, info, progress, desc="pretrain",
          objective=objective)
    return final


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spectral-pretrain``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = resolve(parser, args, "pretrain")
    if cfg.model.backbone != "builtin":
        parser.error(f"the pretrain stage trains the builtin backbone only (model.backbone is {cfg.model.backbone!r})")
    import os

    log_config("spectral-pretrain", args, cfg, int(os.environ.get("RANK", "0")))
    return run_stage("spectral-pretrain", lambda: pretrain(cfg, args.data_dir, args.exp_dir, not args.no_progress,
                                                          args.noise_manifest, args.rir_manifest))


if __name__ == "__main__":
    sys.exit(main())
