"""The training batches of one epoch, read in the training process or by DataLoader workers.

Stage pretrain and finetune (through :func:`spectral.train.loop.train`). Batch ``step`` of
epoch ``epoch`` is a pure function of (seed, epoch, step, rank): its items are drawn from
``default_rng([seed, epoch, step])`` and crop ``i`` from ``default_rng([seed, epoch, step, i])``
(:mod:`spectral.train.data`). With ``num_workers`` > 0 a ``torch.utils.data.DataLoader``
computes those very batches in worker processes, in step order, ahead of the step that needs
them (``prefetch_factor`` each), into pinned memory when training on CUDA; so any number of
workers gives the crops 0 workers give, and a run resumed at step s starts its loader at s.
Reads the data directory's audio or features; writes nothing.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from spectral.train.config import TrainConfig
from spectral.train.data import SpeakerData


def make_batch(data: SpeakerData, tcfg: TrainConfig, epoch: int, step: int, rank: int = 0, world: int = 1) -> tuple[Tensor, Tensor]:
    """This process's share (every ``world``-th item from ``rank``) of training batch ``step`` of ``epoch``."""
    rng = np.random.default_rng([tcfg.seed, epoch, step])
    items = data.sample_batch(rng, tcfg.batch_size, tcfg.utts_per_speaker)
    mine = list(range(rank, len(items), world))
    rngs = [np.random.default_rng([tcfg.seed, epoch, step, i]) for i in mine]
    return data.batch([items[i] for i in mine], rngs, augment=True)


class _Steps(torch.utils.data.Dataset):
    """Steps ``first .. steps - 1`` of one epoch as a map-style data set of whole batches."""

    def __init__(self, data: SpeakerData, tcfg: TrainConfig, epoch: int, first: int, steps: int, rank: int, world: int) -> None:
        self.data, self.tcfg, self.epoch, self.first, self.steps = data, tcfg, epoch, first, steps
        self.rank, self.world = rank, world

    def __len__(self) -> int:
        return max(self.steps - self.first, 0)

    def __getitem__(self, index: int) -> tuple[int, Tensor, Tensor]:
        step = self.first + index
        x, y = make_batch(self.data, self.tcfg, self.epoch, step, self.rank, self.world)
        return step, x, y


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # workers crop and augment in numpy; the step owns the cores


class BatchStream:
    """Batches ``first, first + 1, ...`` of ``epoch`` on ``device``; ``next(step)`` checks the order."""

    def __init__(self, data: SpeakerData, tcfg: TrainConfig, epoch: int, first: int, steps: int,
                 rank: int = 0, world: int = 1, device: torch.device | str = "cpu") -> None:
        self.data, self.tcfg, self.epoch = data, tcfg, epoch
        self.rank, self.world = rank, world
        self.device = torch.device(device)
        workers = int(getattr(tcfg, "num_workers", 0))
        self._iter = None
        if workers > 0 and steps > first:
            loader = torch.utils.data.DataLoader(
                _Steps(data, tcfg, epoch, first, steps, rank, world), batch_size=None, shuffle=False,
                num_workers=workers, pin_memory=self.device.type == "cuda", worker_init_fn=_worker_init,
                prefetch_factor=2, persistent_workers=False,
            )
            self._iter = iter(loader)

    def next(self, step: int) -> tuple[Tensor, Tensor]:
        """(inputs, labels) of batch ``step`` on the device."""
        if self._iter is None:
            x, y = make_batch(self.data, self.tcfg, self.epoch, step, self.rank, self.world)
        else:
            got, x, y = next(self._iter)
            if int(got) != step:
                raise RuntimeError(f"data loader out of order: expected step {step}, got {int(got)}")
        non_blocking = self.device.type == "cuda"
        return x.to(self.device, non_blocking=non_blocking), y.to(self.device, non_blocking=non_blocking)

    def close(self) -> None:
        """Stop the workers (an epoch that ends early leaves them waiting otherwise)."""
        self._iter = None
