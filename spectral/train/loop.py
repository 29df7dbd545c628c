"""The training loop shared by the pretrain and finetune stages: resumable, deterministic, DDP.

Writes into the stage's exp directory:

``checkpoints/last.pt``  every ``checkpoint_every`` steps and after every epoch, atomically
                         (temporary name, then rename): the trainable tensors and the
                         back-end's buffers, optimiser, scheduler, RNG states, position
                         (epoch, step), the epoch's running sums and the log so far;
``train_log.tsv``        one row per epoch: epoch, loss, accuracy, val_loss, val_accuracy,
                         lr (of the epoch's last step), seconds, trainable_params (rewritten whole after each epoch);
``final.pt``             written by the caller's ``write_final`` when the last epoch is done.

Every batch, crop and dropout mask is a function of (seed, epoch, step), so a run killed at
any point (SIGKILL included) and started again ends with the same weights as one that was
never interrupted. Under ``torchrun`` with ``distributed: true`` the model is wrapped in
DistributedDataParallel (gloo on CPU, nccl on GPU); each process takes every
world_size-th item of the global batch, so the result equals one process with that batch.
A NaN or infinite loss stops training before the step is applied, keeping the last good
checkpoint. After every epoch the batch-norm statistics are re-estimated with that epoch's
weights (:func:`recalibrate_batchnorm`) before validation, the checkpoint and final.pt.
``precision`` bf16/fp16 runs forward passes under autocast, fp16 with a gradient scaler whose
state is in last.pt (:mod:`spectral.train.precision`); ``num_workers`` > 0 reads the crops
in DataLoader workers (:mod:`spectral.train.loader`), the same crops in the same order.

What is minimised is a *loss module*, ``objective(x, y) -> (loss, hits)`` holding the model as
``objective.model``: ``hits`` (batch,) scores each item in [0, 1] for the accuracy columns.
The default is the speaker classifier's AAM-softmax (hits: the arg-max is the speaker); the
pretrain stage's masked prediction is :class:`spectral.train.masked.MaskedObjective`. Every
trainable tensor lives in the model (a loss head too), so checkpoints hold them all.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from spectral.atomic import atomic_path, atomic_write_text
from spectral.errors import InputError
from spectral.train.config import TrainConfig
from spectral.train.data import SpeakerData
from spectral.train.loader import BatchStream
from spectral.train.precision import Precision

log = logging.getLogger("spectral.train")

LAST_FORMAT = "spectral-last/1"
LOG_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "trainable_params")


class TrainingStopped(InputError):
    """Training cannot go on (a non-finite loss); the message says where and what was kept."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary name beside ``path``, flushed to disk, then renamed into place."""
    with atomic_path(path, fsync=True) as tmp:
        torch.save(obj, tmp)


def resumable_state(model: nn.Module) -> dict[str, Tensor]:
    """What changes during training: every trainable parameter and every buffer outside the backbone."""
    state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    for name, buf in model.named_buffers():
        if not name.startswith("backbone."):
            state[name] = buf.detach().clone()
    return state


def load_resumable_state(model: nn.Module, state: dict[str, Tensor], source: Path) -> None:
    """Copy a :func:`resumable_state` back into ``model``; InputError naming ``source`` when it does not fit."""
    expected = resumable_state(model)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise InputError(source, f"checkpoint does not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}")
    own = dict(model.named_parameters())
    own.update(dict(model.named_buffers()))
    with torch.no_grad():
        for key, value in state.items():
            if own[key].shape != value.shape:
                raise InputError(source, f"checkpoint tensor {key!r} has shape {tuple(value.shape)}, the model expects {tuple(own[key].shape)}")
            own[key].copy_(value)


@dataclass
class DistInfo:
    """Where this process stands: rank, world size, device."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(tcfg: TrainConfig) -> DistInfo:
    """Join the process group torchrun describes (when configured), choose the device.

    Without ``distributed: true`` or outside torchrun (WORLD_SIZE unset or 1) this is one process.
    """
    if tcfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device is 'cuda' but no CUDA device is available")
    cuda = tcfg.device == "cuda" or (tcfg.device == "auto" and torch.cuda.is_available())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if not (tcfg.distributed and world > 1):
        return DistInfo(0, 1, torch.device("cuda" if cuda else "cpu"))
    if tcfg.batch_size % world:
        raise ValueError(f"batch_size {tcfg.batch_size} must be divisible by the {world} processes")
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    return DistInfo(rank, world, device)


def param_groups(model: nn.Module, tcfg: TrainConfig) -> list[dict]:
    """Trainable tensors in two groups: the backbone's at lr x backbone_lr_scale, the rest at lr.

    Empty groups are left out, so a frozen backbone gives one group (the back-end's)."""
    backbone, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (backbone if name.startswith("backbone.") else rest).append(p)
    groups = [{"params": rest, "lr": tcfg.lr, "name": "backend"},
              {"params": backbone, "lr": tcfg.lr * tcfg.backbone_lr_scale, "name": "backbone"}]
    return [g for g in groups if g["params"]]


def make_optimizer(params: list[nn.Parameter] | list[dict], tcfg: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimiser over ``params`` (tensors, or parameter groups with their own lr)."""
    if tcfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=tcfg.lr, momentum=tcfg.momentum, weight_decay=tcfg.weight_decay)
    if tcfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    return torch.optim.AdamW(params, lr=tcfg.lr, weight_decay=tcfg.weight_decay)


def lr_factor(step: int, steps_per_epoch: int, tcfg: TrainConfig) -> float:
    """Multiplier of the peak lr at global ``step``: linear warm-up, then lr_decay per epoch."""
    warm = min(1.0, (step + 1) / tcfg.warmup_steps) if tcfg.warmup_steps else 1.0
    return warm * tcfg.lr_decay ** (step // steps_per_epoch)


#: Default share of the training steps over which the AAM-softmax margin ramps up from 0
#: (TrainConfig.margin_ramp; see margin_factor).
MARGIN_RAMP = 0.5


def margin_factor(step: int, total_steps: int, ramp_share: float = MARGIN_RAMP) -> float:
    """Multiplier of the AAM margin at global ``step``: 0 at the start, rising linearly to 1 at ``ramp_share`` of training.

    A randomly initialised speaker head cannot meet a margin: with one from step 0 the true-class
    logit is pushed below every other and the model learns far more slowly (measured: 2.7 %
    training accuracy after 480 pre-training steps). The margin is a function of the step, so
    a resumed run sees the same margins as an uninterrupted one.
    """
    ramp = ramp_share * total_steps
    return 1.0 if ramp < 1 else min(1.0, step / ramp)


@dataclass(frozen=True)
class MarginSchedule:
    """The AAM-softmax margin of every global step: ``peak`` (backend.margin) times :func:`margin_factor`.

    The training loop sets the speaker objective's margin to ``at(step)`` before every batch;
    the head's own ``margin`` (the peak, used after training) is never changed."""

    peak: float
    total_steps: int
    ramp_share: float = MARGIN_RAMP

    def at(self, step: int) -> float:
        return self.peak * margin_factor(step, self.total_steps, self.ramp_share)


class _WithLoss(nn.Module):
    """The speaker objective: model + AAM head as one loss module, so DistributedDataParallel sees the whole graph.

    ``(x, y) -> (loss, hits)``, hits 1 where the head's arg-max is the speaker ``y``, else 0.
    ``margin`` is the AAM margin of the current step (the loop sets it from its
    :class:`MarginSchedule`); None uses the head's own.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.margin: float | None = None

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        loss, cos = self.model.head(self.model(x), y, self.margin)
        return loss, (cos.detach().argmax(dim=1) == y).to(loss.dtype)


def _step_seed(seed: int, epoch: int, step: int, rank: int) -> int:
    return int(np.random.default_rng([seed, epoch, step, rank, 17]).integers(2**62))


@torch.no_grad()
def validate(objective: nn.Module, data: SpeakerData, batch_size: int, device: torch.device,
             seed: int = 0) -> tuple[float, float]:
    """(mean loss, mean hits) of the loss module ``objective`` on ``data``: centre crops, eval mode.

    (nan, nan) when ``data`` is empty. Batch ``b`` runs with torch's CPU generator seeded from
    (seed, b) (masks of the masked objective), restored afterwards, so validation is the same
    in every epoch and leaves the training run's random state as it was.
    """
    if len(data) == 0:
        return math.nan, math.nan
    was = objective.training
    objective.eval()
    loss_sum, hit_sum = 0.0, 0.0
    for b, i in enumerate(range(0, len(data), batch_size)):
        utts = data.utts[i : i + batch_size]
        items = [type("I", (), {"utt": u, "label": data.label_of[data.utt2spk[u]]})() for u in utts]
        x, y = data.batch(items, [None] * len(items), augment=False)
        x, y = x.to(device), y.to(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.default_rng([seed, b, 7919]).integers(2**62)))
            loss, hits = objective(x, y)
        loss_sum += float(loss) * len(utts)
        hit_sum += float(hits.sum())
    objective.train(was)
    return loss_sum / len(data), hit_sum / len(data)


def recalibrate_batchnorm(model: nn.Module, data: SpeakerData, tcfg: TrainConfig, epoch: int, info: DistInfo) -> int:
    """Re-estimate every batch-norm layer's running statistics with the current weights.

    The running averages collected during training mix statistics of many past weights and
    lag the final ones, and evaluation (validation, embeddings) uses them. This resets them
    and takes the plain average over ``tcfg.bn_recalibration_batches`` batches of random,
    un-augmented crops (a function of seed and epoch, so resuming stays exact); only the
    batch-norm layers run in training mode, dropout stays off. Under DDP each process takes
    its share of every batch and the statistics span all of them. Returns the batches used.
    """
    n_batches = tcfg.bn_recalibration_batches
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if n_batches == 0 or not norms or len(data) == 0:
        return 0
    was = model.training
    model.eval()
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the recalibration batches
        m.train()
    with torch.no_grad():
        for b in range(n_batches):
            rng = np.random.default_rng([tcfg.seed, epoch, 104729, b])
            items = data.sample_batch(rng, tcfg.batch_size, tcfg.utts_per_speaker)
            mine = list(range(info.rank, len(items), info.world))
            rngs = [np.random.default_rng([tcfg.seed, epoch, 104729, b, i]) for i in mine]
            x, _ = data.batch([items[i] for i in mine], rngs, augment=False)
            model(x.to(info.device))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.train(was)
    return n_batches


def _fmt(value: float) -> str:
    return "nan" if value != value else f"{value:.6g}"


def write_train_log(path: Path, rows: list[dict]) -> None:
    """train_log.tsv: a header and one tab-separated row per finished epoch."""
    lines = ["\t".join(LOG_COLUMNS)]
    for row in rows:
        lines.append("\t".join(str(row[c]) if isinstance(row[c], int) else _fmt(row[c]) for c in LOG_COLUMNS))
    atomic_write_text(path, "\n".join(lines) + "\n")


@dataclass
class Position:
    """Where training stands: the next (epoch, step), the running epoch's sums and the finished epochs' rows."""

    epoch: int = 0
    step: int = 0
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SUMS, 0.0))
    history: list[dict] = field(default_factory=list)


SUMS = ("loss", "correct", "count", "seconds")


@dataclass
class Optimisation:
    """The trainable tensors and what updates them: optimiser, lr schedule, precision (its scaler)."""

    params: list[nn.Parameter]
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    prec: Precision

    @classmethod
    def create(cls, model: nn.Module, tcfg: TrainConfig, steps: int, device: torch.device) -> "Optimisation":
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters")
        opt = make_optimizer(param_groups(model, tcfg), tcfg)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, steps, tcfg))
        return cls(params, opt, sched, Precision(getattr(tcfg, "precision", "fp32"), device))

    @property
    def lr(self) -> float:
        return self.opt.param_groups[0]["lr"]


def save_checkpoint(path: Path, fingerprint: dict, model: nn.Module, o: Optimisation, at: Position) -> None:
    """last.pt: everything :func:`resume` needs to go on from ``at`` exactly (RNG states included)."""
    atomic_save(
        {
            "format": LAST_FORMAT,
            "fingerprint": fingerprint,
            "state": resumable_state(model),
            "optimizer": o.opt.state_dict(),
            "scheduler": o.sched.state_dict(),
            "precision": o.prec.state_dict(),
            "epoch": at.epoch,
            "step": at.step,
            "sums": dict(at.sums),
            "history": at.history,
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": _from_numpy_state(np.random.get_state()),
                "python": _from_python_state(random.getstate()),
            },
        },
        path,
    )


def resume(path: Path, fingerprint: dict, model: nn.Module, o: Optimisation, info: DistInfo) -> Position | None:
    """The position of ``path`` (last.pt) with model, optimiser, schedule and RNG states restored, or None
    when there is none to resume: no last.pt, or one written with another ``fingerprint`` (other
    settings: the workflow reruns the stage for that very reason), which is kept beside as
    last.stale.pt. An unreadable last.pt is an InputError naming it."""
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InputError(path, f"cannot read the checkpoint ({type(err).__name__}: {err}); remove it to start afresh") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != LAST_FORMAT:
        raise InputError(path, f"not a {LAST_FORMAT} checkpoint; remove it to start afresh")
    if ckpt["fingerprint"] != fingerprint:
        stale = path.with_name("last.stale.pt")
        if info.main:
            path.replace(stale)
            log.warning("%s was written with other settings: kept as %s, training from scratch", path, stale)
        return None
    load_resumable_state(model, ckpt["state"], path)
    o.opt.load_state_dict(ckpt["optimizer"])
    o.sched.load_state_dict(ckpt["scheduler"])
    o.prec.load_state_dict(ckpt.get("precision"))
    torch.set_rng_state(ckpt["rng"]["torch"])
    np.random.set_state(_to_numpy_state(ckpt["rng"]["numpy"]))
    random.setstate(_to_python_state(ckpt["rng"]["python"]))
    return Position(int(ckpt["epoch"]), int(ckpt["step"]), {k: float(v) for k, v in ckpt["sums"].items()},
                    [dict(r) for r in ckpt["history"]])


def distributed_objective(objective: nn.Module, model: nn.Module, info: DistInfo) -> nn.Module:
    """``objective`` wrapped in DistributedDataParallel when there is more than one process."""
    if info.world == 1:
        return objective
    from torch.nn.parallel import DistributedDataParallel

    # a whole trainable backbone (method full) may hold parameters a forward never uses
    # (WavLM's masked_spec_embed with masking off); DDP must then look for them each step
    backbone = getattr(model, "backbone", None)
    whole = backbone is not None and any(p.requires_grad for p in backbone.parameters())
    return DistributedDataParallel(objective, device_ids=[info.device] if info.device.type == "cuda" else None,
                                   find_unused_parameters=whole)


def train_step(wrapped: nn.Module, o: Optimisation, x: Tensor, y: Tensor, grad_clip: float, info: DistInfo,
               where: str, last_path: Path) -> Tensor:
    """One optimiser step on batch (x, y); returns (loss sum, hits, items) over every process.

    Raises TrainingStopped, before the step is applied, on a non-finite loss."""
    with o.prec.autocast():
        loss, hits = wrapped(x, y)
    loss = loss.float()
    stats = torch.stack([loss.detach() * len(y), hits.detach().sum().to(loss.dtype),
                         torch.tensor(float(len(y)), dtype=loss.dtype, device=loss.device)])
    if info.world > 1:
        dist.all_reduce(stats)
    if not torch.isfinite(stats[0]):
        kept = f"the last good checkpoint is kept at {last_path}" if last_path.exists() else "no checkpoint had been written yet"
        raise TrainingStopped(
            f"non-finite loss ({float(stats[0] / stats[2])}) at {where}; training stopped before applying "
            f"the step; {kept}. Lower the learning rate or check the input features."
        )
    o.opt.zero_grad(set_to_none=True)
    o.prec.backward(loss)
    o.prec.step(o.opt, o.params, grad_clip, where=where)
    o.sched.step()
    return stats


def run_epoch(wrapped: nn.Module, objective: nn.Module, o: Optimisation, train_data: SpeakerData, tcfg: TrainConfig,
              at: Position, steps: int, info: DistInfo, margins: MarginSchedule | None, save: Callable[[], None],
              bar: tqdm, last_path: Path) -> tuple[float, float]:
    """The steps of epoch ``at.epoch`` from ``at.step`` on, saving last.pt every ``checkpoint_every``
    steps; returns the lr of the last step and when the epoch's unsaved time began (perf_counter).
    With ``margins``, ``objective.margin`` is the schedule's at every step (and stays the last
    step's for the epoch's validation, as before the schedule was explicit)."""
    lr_now, started = o.lr, time.perf_counter()
    stream = BatchStream(train_data, tcfg, at.epoch, at.step, steps, info.rank, info.world, info.device)
    while at.step < steps:
        x, y = stream.next(at.step)
        torch.manual_seed(_step_seed(tcfg.seed, at.epoch, at.step, info.rank))
        if margins is not None:
            objective.margin = margins.at(at.epoch * steps + at.step)
        lr_now = o.lr
        stats = train_step(wrapped, o, x, y, tcfg.grad_clip, info, f"epoch {at.epoch + 1}, step {at.step + 1}", last_path)
        at.step += 1
        for key, value in zip(("loss", "correct", "count"), stats.tolist()):
            at.sums[key] += value
        bar.update(1)
        bar.set_postfix(loss=f"{at.sums['loss'] / at.sums['count']:.3f}",
                        acc=f"{at.sums['correct'] / at.sums['count']:.3f}", lr=f"{o.lr:.2e}")
        if at.step % tcfg.checkpoint_every == 0 and at.step < steps:
            at.sums["seconds"] += time.perf_counter() - started
            started = time.perf_counter()
            save()
    stream.close()
    return lr_now, started


def validate_epoch(model: nn.Module, objective: nn.Module, o: Optimisation, train_data: SpeakerData,
                   val_data: SpeakerData, tcfg: TrainConfig, epoch: int, info: DistInfo) -> tuple[float, float]:
    """Batch-norm recalibration, then (loss, hits) on the held-out data, with the epoch's final weights."""
    with o.prec.autocast():
        recalibrate_batchnorm(model, train_data, tcfg, epoch, info)
        return validate(objective, val_data, tcfg.batch_size, info.device, tcfg.seed)


def epoch_row(at: Position, val: tuple[float, float], lr: float, trainable: int) -> dict:
    """train_log.tsv's row of the epoch ``at`` ends."""
    s = at.sums
    return {"epoch": at.epoch + 1, "loss": s["loss"] / max(s["count"], 1), "accuracy": s["correct"] / max(s["count"], 1),
            "val_loss": val[0], "val_accuracy": val[1], "lr": lr, "seconds": s["seconds"], "trainable_params": trainable}


def train(
    model: nn.Module,
    train_data: SpeakerData,
    val_data: SpeakerData,
    tcfg: TrainConfig,
    exp_dir: str | Path,
    fingerprint: dict[str, Any],
    write_final: Callable[[nn.Module, list[dict]], None],
    dist_info: DistInfo | None = None,
    progress: bool = True,
    desc: str = "train",
    objective: nn.Module | None = None,
) -> list[dict]:
    """Train ``model`` (a SpeakerModel with its head; trainable = requires_grad) and call ``write_final``.

    ``objective`` is the loss module (see the module docstring; its ``model`` must be
    ``model``); None is the speaker objective, AAM-softmax through ``model.head`` with the
    margin of :class:`MarginSchedule` at every step.

    Resumes from ``exp_dir/checkpoints/last.pt`` when one exists with this run's ``fingerprint``
    (the settings that determine the result); one with another fingerprint is kept as
    ``last.stale.pt`` and training starts from scratch (:func:`resume`). Returns the per-epoch
    log rows. Raises InputError on an unreadable last.pt, TrainingStopped on a non-finite loss.
    """
    info = dist_info or DistInfo()
    exp_dir = Path(exp_dir)
    last_path = exp_dir / "checkpoints" / "last.pt"
    model.to(info.device)
    steps = tcfg.steps_per_epoch or max(1, math.ceil(len(train_data) / tcfg.batch_size))
    o = Optimisation.create(model, tcfg, steps, info.device)
    fp = json.loads(json.dumps(fingerprint, sort_keys=True))
    at = resume(last_path, fp, model, o, info)
    if at is not None and info.main:
        log.info("resuming from %s at epoch %d, step %d of %d", last_path, at.epoch + 1, at.step, steps)
    elif info.main:
        log.info("training from scratch: %d epochs of %d steps, %d trainable parameters", tcfg.epochs, steps,
                 sum(p.numel() for p in o.params))
    at = at or Position()
    margins = None
    if objective is None:
        objective = _WithLoss(model)
        margins = MarginSchedule(float(model.head.margin), steps * tcfg.epochs, tcfg.margin_ramp)
    if objective.model is not model:
        raise ValueError("the loss module must hold the trained model as .model")
    wrapped = distributed_objective(objective, model, info)
    save = (lambda: save_checkpoint(last_path, fp, model, o, at)) if info.main else (lambda: None)
    while at.epoch < tcfg.epochs:
        bar = tqdm(total=steps, initial=at.step, desc=f"{desc} epoch {at.epoch + 1}/{tcfg.epochs}", unit="step",
                   disable=not (progress and info.main), dynamic_ncols=True)
        model.train()
        lr_now, started = run_epoch(wrapped, objective, o, train_data, tcfg, at, steps, info, margins, save, bar,
                                    last_path)
        bar.close()
        val = validate_epoch(model, objective, o, train_data, val_data, tcfg, at.epoch, info)
        at.sums["seconds"] += time.perf_counter() - started
        row = epoch_row(at, val, lr_now, sum(p.numel() for p in o.params))
        at.history.append(row)
        if info.main:
            log.info("epoch %d/%d: loss %.4f, accuracy %.4f, validation loss %.4f, accuracy %.4f, lr %.3g, %.1f s",
                     at.epoch + 1, tcfg.epochs, row["loss"], row["accuracy"], row["val_loss"], row["val_accuracy"],
                     lr_now, row["seconds"])
        at.epoch, at.step, at.sums = at.epoch + 1, 0, dict.fromkeys(SUMS, 0.0)
        save()
        if info.main:
            write_train_log(exp_dir / "train_log.tsv", at.history)
    if info.main:
        write_final(model, at.history)
    if info.world > 1:
        dist.barrier()
    return at.history


def _from_python_state(state: tuple) -> list:
    version, internal, gauss = state
    return [version, torch.tensor(internal, dtype=torch.int64), gauss]


def _to_python_state(data: list) -> tuple:
    version, internal, gauss = data
    return (int(version), tuple(int(v) for v in internal.tolist()), gauss)


def _from_numpy_state(state: tuple) -> list:
    name, keys, pos, has_gauss, cached = state
    return [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]


def _to_numpy_state(data: list) -> tuple:
    name, keys, pos, has_gauss, cached = data
    return (name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached))
