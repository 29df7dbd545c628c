"""Training stages: pretrain (built-in backbone) and finetune (adapters + speaker back-end).

``config``    the settings (:class:`TrainConfig`, :class:`AugmentConfig`, :class:`RunConfig`)
              and :func:`system_name`;
``data``      fixed-length crops, speaker-balanced batches, noise/RIR and SpecAugment;
``loop``      the resumable, deterministic, DDP-capable training loop;
``pretrain``, ``finetune``  the stages and their command lines.
"""

import os

# Idle OpenMP threads sleep instead of spinning (set before torch loads its OpenMP runtime): where
# other jobs share the cores, spinning threads made training steps about 3x slower (measured).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from spectral.train.config import AugmentConfig, RunConfig, TrainConfig, resolve_config, system_name

__all__ = ["AugmentConfig", "RunConfig", "TrainConfig", "resolve_config", "system_name"]
