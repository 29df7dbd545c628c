"""What a system was trained on: the training set's record in ``final.pt``, and its check.

The finetune stage writes into ``exp/<system>/final.pt`` under ``"train_data"``::

    {"corpus": ..., "root": ..., "train_set": ...,   # DataConfig (the workflow's; null on a bare command line)
     "data_dir": "data/vox1_dev",                     # the Kaldi directory it read
     "num_speakers": 1211, "num_utts": 148642,
     "speakers_sha256": "..."}                        # speakers_digest of its utt2spk speakers

The embed and score stages take the configured training set (``--train-data-dir
data/<train set>``) and refuse a checkpoint whose record names another set or other speakers,
naming both: a model trained on CN-Celeb1 never scores VoxCeleb1 under the configured name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from spectral.data.kaldi import data_dir_utt2spk
from spectral.errors import InputError


def speakers_digest(speakers: Iterable[str]) -> str:
    """sha256 (16 hex digits) of the sorted, distinct speaker ids, one per line."""
    text = "".join(f"{s}\n" for s in sorted(set(speakers)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe(data_dir: str | Path) -> dict[str, Any]:
    """The record of the Kaldi training directory ``data_dir``: its name, sizes and speakers' digest."""
    data_dir = Path(data_dir)
    utt2spk = data_dir_utt2spk(data_dir, "missing: the training set's utt2spk (run the prepare stage first)")
    return {"data_dir": str(data_dir), "set": data_dir.name, "num_speakers": len(set(utt2spk.values())),
            "num_utts": len(utt2spk), "speakers_sha256": speakers_digest(utt2spk.values())}


def record(data_dir: str | Path, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What ``final.pt`` keeps under ``"train_data"``: :func:`describe` plus the config's ``data`` section."""
    out = dict(data or {})
    out.update(describe(data_dir))
    return out


def _words(rec: Mapping[str, Any]) -> str:
    corpus = f"corpus {rec['corpus']} at {rec['root']}, " if rec.get("corpus") else ""
    return (f"{rec['set']} ({corpus}{rec['num_speakers']} speakers, {rec['num_utts']} utterances, "
            f"speakers sha256 {rec['speakers_sha256']})")


def read_checkpoint_record(checkpoint_path: str | Path) -> dict[str, Any]:
    """A final.pt's top-level entries but its tensors' values, memory-mapped (cheap for a 1 GB checkpoint)."""
    import torch

    from spectral.models.speaker import read_checkpoint

    path = Path(checkpoint_path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        ckpt = read_checkpoint(path)  # names the file and what is wrong with it
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        ckpt = read_checkpoint(path)
    return {k: v for k, v in ckpt.items() if k not in ("model", "adapters")}


def check_trained_on(checkpoint: Mapping[str, Any], checkpoint_path: str | Path, train_data_dir: str | Path) -> None:
    """Refuse ``checkpoint`` (a loaded final.pt) unless it was trained on ``train_data_dir``'s set and speakers.

    Raises InputError naming the checkpoint, what it was trained on, and the configured set.
    """
    configured = describe(train_data_dir)
    trained = checkpoint.get("train_data")
    if not trained:
        raise InputError(checkpoint_path, f"records no training set (written before training sets were recorded); "
                                          f"the configured one is {_words(configured)}: fine-tune again")
    if trained["set"] != configured["set"] or trained["speakers_sha256"] != configured["speakers_sha256"]:
        raise InputError(checkpoint_path, f"was trained on {_words(trained)}, but the configured training set is "
                                          f"{_words(configured)}: it belongs to another system")
