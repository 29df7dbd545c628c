"""Stage finetune: adapt a pre-trained backbone with the configured adapter method, train the back-end.

Reads the backbone — our ``final.pt`` (``--backbone-checkpoint``, builtin) or a local
transformers directory (``model.path``, wavlm/hubert) — the svd stage's ``factors.pt``
(``--factors``; SVD-based methods start from it instead of decomposing again) and the
training speakers' Kaldi data directory; writes into ``--exp-dir`` (``exp/<system>``, see
:func:`spectral.train.config.system_name`):

``final.pt``       the fine-tuned model with adapters merged (format in
                   :mod:`spectral.models.speaker`), plus the adapter tensors themselves
                   (none for ``full``, whose trained tensors are the backbone in ``model``)
                   and what it was trained on (``train_data``, :mod:`spectral.train.trainset`);
``train_log.tsv``  per epoch: loss, accuracy, validation loss and accuracy on held-out
                   utterances of the training speakers, lr, seconds, trainable parameters;
``checkpoints/last.pt``  for resuming (:mod:`spectral.train.loop`).

Settings: the ``model``, ``backend``, ``adapter``, ``finetune`` and ``augment`` sections.
Command line: ``spectral-finetune``; shell stage: ``steps/finetune.sh``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
from pathlib import Path

import torch

from spectral.logutil import command_parser
from spectral.adapters import adapter_state_dict, apply_adapters, count_trainable, find_targets, merge_adapters
from spectral.adapters.api import USES_FACTORS
from spectral.data.kaldi import c_sorted, data_dir_utt2spk
from spectral.errors import InputError
from spectral.models import SpeakerModel, adapter_root, build_backbone
from spectral.models.speaker import load_pretrained_builtin
from spectral.train.common import (add_common_arguments, final_checkpoint, log_config, resolve,
                                   run_stage, set_threads, speaker_data)
from spectral.train.config import RunConfig, identity_train_dict, system_name
from spectral.train.loop import atomic_save, setup_distributed, train
from spectral.train.trainset import record as train_data_record

log = logging.getLogger("spectral-finetune")

EXAMPLE = """\
spectral-finetune --data-dir data/vox1_dev --backbone-checkpoint exp/pretrain/builtin/final.pt \\
    --factors exp/svd/builtin/k64_b0/factors.pt --exp-dir exp/$(spectral-finetune --print-system-name --config conf/config.yaml)
spectral-finetune --data-dir data/vox1_dev --exp-dir exp/SYSTEM --config conf/presets/paper.yaml \\
    --set model.path=/models/wavlm-large --factors exp/svd/wavlm-large/k256_b0/factors.pt
spectral-finetune --print-system-name --config conf/config.yaml --set adapter.method=lora
The workflow adds a data section (corpus, root, train_set, speakers; part of the system name) to
--config; by hand, give it with --set, e.g. --set data.corpus=vox1 --set data.train_set=vox1_dev.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("spectral-finetune", __doc__.split("\n\n")[0], EXAMPLE)
    parser.add_argument("--data-dir", help="Kaldi data directory of the training (dev) speakers")
    parser.add_argument("--exp-dir", help="output directory, normally exp/<system name>")
    parser.add_argument("--backbone-checkpoint", default=None,
                        help="builtin: the pretrain stage's final.pt (wavlm/hubert load from model.path instead)")
    parser.add_argument("--factors", default=None,
                        help="the svd stage's factors.pt; spectralft, spectralft_rot, pissa and milora start from it")
    parser.add_argument("--exclude-speakers", default=None,
                        help="file of speaker ids (one per line) left out of training: the dev_trials stage's "
                             "dev_speakers, needed when finetune.dev_speakers > 0")
    parser.add_argument("--print-system-name", action="store_true",
                        help="print the system name the settings give and exit")
    add_common_arguments(parser)
    return parser


def load_backbone(cfg: RunConfig, checkpoint: str | None) -> tuple[torch.nn.Module, dict | None]:
    """The pre-trained backbone and, for builtin, the pre-training checkpoint it came from."""
    if cfg.model.backbone == "builtin":
        if not checkpoint:
            raise InputError("--backbone-checkpoint", "the builtin backbone needs the pretrain stage's final.pt")
        return load_pretrained_builtin(checkpoint, cfg.model.builtin)
    return build_backbone(cfg.model), None


def training_speakers(utt2spk: dict[str, str], tcfg, exclude_speakers: str | None,
                      data_dir: Path) -> tuple[dict[str, str], list[str] | None]:
    """``utt2spk`` without the development speakers of ``exclude_speakers`` (exactly
    ``finetune.dev_speakers`` of the set), and the speakers left (None when none is held out)."""
    if not (tcfg.dev_speakers or exclude_speakers):
        return utt2spk, None
    if not exclude_speakers:
        raise InputError("--exclude-speakers", f"finetune.dev_speakers is {tcfg.dev_speakers}: name the "
                                               "dev_trials stage's dev_speakers file")
    from spectral.corpora.dev_trials import read_speaker_list

    held_out = set(read_speaker_list(exclude_speakers))
    unknown = sorted(held_out - set(utt2spk.values()))
    if unknown:
        raise InputError(exclude_speakers, f"speaker {unknown[0]!r} is not in {data_dir / 'utt2spk'}")
    if len(held_out) != tcfg.dev_speakers:
        raise InputError(exclude_speakers, f"holds {len(held_out)} speakers, finetune.dev_speakers says "
                                           f"{tcfg.dev_speakers}")
    utt2spk = {u: s for u, s in utt2spk.items() if s not in held_out}
    log.info("%d development speakers left out of training (%s)", len(held_out), exclude_speakers)
    return utt2spk, c_sorted(set(utt2spk.values()))


def init_backend(model: SpeakerModel, cfg: RunConfig, pre_ckpt: dict, backbone_checkpoint: str) -> None:
    """Start ``model``'s back-end from the pre-training checkpoint's (finetune.init_backend)."""
    pre_objective = pre_ckpt["config"].get("train", {}).get("objective", "speaker")
    if pre_objective != "speaker":
        raise InputError(backbone_checkpoint, f"was pre-trained with objective {pre_objective!r}, which trains no "
                                              "speaker back-end; set finetune.init_backend: false")
    if pre_ckpt["config"]["backend"] != cfg.backend.to_dict():
        raise InputError(backbone_checkpoint, "its back-end has other settings than the backend section; "
                                              "set finetune.init_backend: false or match the settings")
    model.backend.load_state_dict({k[len("backend."):]: v for k, v in pre_ckpt["model"].items() if k.startswith("backend.")})


def adapt(model: SpeakerModel, cfg: RunConfig, factors_path: str | None, main: bool) -> None:
    """Apply the configured adapter method to ``model``'s backbone, from the svd stage's factors where it reads them."""
    root = adapter_root(model)
    factors = None
    if factors_path and cfg.adapter.method in USES_FACTORS:
        from spectral.svd import factors_by_module, load_factors

        factors = factors_by_module(load_factors(factors_path), find_targets(root, cfg.adapter.targets), factors_path)
    n_targets = len(find_targets(root, cfg.adapter.targets)) if cfg.adapter.method != "full" else "all"
    try:
        apply_adapters(root, cfg.adapter, factors=factors)
    except ValueError as err:
        raise InputError(factors_path or "adapter config", str(err)) from None
    if main:
        log.info("adapter %s on %s modules: %d trainable backbone parameters, %d in all", cfg.adapter.method,
                 n_targets, count_trainable(root), count_trainable(model))


def finetune(cfg: RunConfig, data_dir: str | Path, exp_dir: str | Path, backbone_checkpoint: str | None = None,
             factors_path: str | None = None, progress: bool = True, noise_manifest: str | None = None,
             rir_manifest: str | None = None, exclude_speakers: str | None = None) -> Path:
    """Fine-tune as ``cfg`` says; return the path of the written final.pt.

    ``exclude_speakers`` (a file of speaker ids) names the development speakers left out of
    training; it must hold exactly ``finetune.dev_speakers`` speakers of the set.
    ``noise_manifest``/``rir_manifest`` (the augment stage's) take the place of augment.noise_dir/rir_dir.
    """
    tcfg = cfg.finetune
    info = setup_distributed(tcfg)
    set_threads(tcfg.threads)
    data_dir, exp_dir = Path(data_dir), Path(exp_dir)
    final = exp_dir / "final.pt"
    utt2spk = data_dir_utt2spk(data_dir, allow_empty=True)
    if factors_path and not Path(factors_path).is_file():
        raise InputError(factors_path, "no such factors file (run the svd stage first)")
    utt2spk, speakers = training_speakers(utt2spk, tcfg, exclude_speakers, data_dir)
    train_data, val_data = speaker_data(cfg, tcfg, data_dir, utt2spk, cfg.model.input_kind, speakers,
                                        noise_manifest, rir_manifest)
    system = system_name(cfg)
    trained_on = train_data_record(data_dir, cfg.data.to_dict())
    if info.main:
        log.info("system %s; %s: %d speakers, %d training and %d held-out utterances", system, data_dir,
                 train_data.num_speakers, len(train_data), len(val_data))

    torch.manual_seed(tcfg.seed)
    backbone, pre_ckpt = load_backbone(cfg, backbone_checkpoint)
    model = SpeakerModel(backbone, cfg.backend, train_data.num_speakers)
    if pre_ckpt is not None and tcfg.init_backend:
        init_backend(model, cfg, pre_ckpt, backbone_checkpoint)
    adapt(model, cfg, factors_path, info.main)
    config = cfg.to_dict()
    config["pretrain"], config["finetune"] = identity_train_dict(cfg.pretrain), identity_train_dict(tcfg)
    fingerprint = {
        "stage": "finetune", "system": system, "config": config, "backbone": str(backbone_checkpoint or cfg.model.path),
        "factors": str(factors_path), "speakers": train_data.speakers, "utts": len(train_data),
    }

    def write_final(trained, history) -> None:
        # full: the trained tensors are the whole backbone, which "model" holds already
        adapters = {} if cfg.adapter.method == "full" else adapter_state_dict(adapter_root(trained))
        merged = copy.deepcopy(trained).cpu()
        merge_adapters(adapter_root(merged))
        ssl_config = None if cfg.model.backbone == "builtin" else merged.backbone.model.config.to_dict()
        state = {k: v.detach().cpu() for k, v in merged.state_dict().items()}
        atomic_save(final_checkpoint(state, {**cfg.to_dict(), "train": tcfg.to_dict(), "ssl_config": ssl_config},
                                     train_data.speakers, system, train_data=trained_on,
                                     adapters={k: v.cpu() for k, v in adapters.items()},
                                     trainable_params=count_trainable(trained)), final)
        log.info("wrote %s (validation accuracy %.4f)", final, history[-1]["val_accuracy"])

    train(model, train_data, val_data, tcfg, exp_dir, fingerprint, write_final, info, progress, desc="finetune")
    return final


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spectral-finetune``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = resolve(parser, args, "finetune")
    if args.print_system_name:
        print(system_name(cfg))
        return 0
    if not args.data_dir or not args.exp_dir:
        parser.error("--data-dir and --exp-dir are required")
    if cfg.model.backbone == "builtin" and not args.backbone_checkpoint:
        parser.error("the builtin backbone needs --backbone-checkpoint (the pretrain stage's final.pt)")
    log_config("spectral-finetune", args, cfg, int(os.environ.get("RANK", "0")))
    return run_stage("spectral-finetune", lambda: finetune(cfg, args.data_dir, args.exp_dir, args.backbone_checkpoint,
                                                          args.factors, not args.no_progress,
                                                          args.noise_manifest, args.rir_manifest,
                                                          args.exclude_speakers))


if __name__ == "__main__":
    sys.exit(main())
