"""The assembled speaker model (backbone + back-end + AAM head) and its ``final.pt`` checkpoints.

``final.pt`` (written by the pretrain and finetune stages, read by svd and embed) is a dict
saved with ``torch.save`` and read with ``weights_only=True``::

    {"format": "spectral-model/1",
     "model":  state dict of SpeakerModel ("backbone.*", "backend.*", "head.*"), adapters merged,
     "config": {"model": ..., "backend": ..., "adapter": ... or None, "train": ..., "augment": ...,
                "ssl_config": transformers config dict (SSL backbones) or None},
     "speakers": training speaker ids in head order, "system": system name,
     "adapters": the trained adapter tensors before merging (finetune only),
     "init": {"function", "seed", "torch"}: how to re-create the initial backbone (pretrain only;
             spectral.models.builtin.initial_backbone),
     "pretext": the masked-prediction head (pretrain with pretrain.objective masked only; its
                "backend.*" and "head.*" are then the untrained, seeded initialisation)}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from spectral.errors import InputError
from spectral.models.backend import AAMSoftmax, BackendConfig, SpeakerBackend
from spectral.models.builtin import BuiltinBackbone
from spectral.models.config import BACKBONES, BuiltinConfig, ModelConfig

CHECKPOINT_FORMAT = "spectral-model/1"


class SpeakerModel(nn.Module):
    """backbone -> back-end -> embedding; ``head`` (AAM-softmax over training speakers) for training."""

    def __init__(self, backbone: nn.Module, backend_cfg: BackendConfig, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.backend = SpeakerBackend(backbone.num_hidden_states, backbone.hidden_size, backend_cfg)
        self.head = AAMSoftmax(backend_cfg.embed_dim, num_classes, backend_cfg.margin, backend_cfg.loss_scale)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Input (fbank or waveform batch) -> (batch, embed_dim) embeddings.

        ``lengths``: real frames (fbank) or samples (waveform) of each row of a zero-padded
        batch; padding then changes no row's embedding (evaluation mode). None: no padding.
        """
        if lengths is None:
            return self.backend(self.backbone(x))
        states = self.backbone(x, lengths)
        frames = self.backbone.frame_lengths(lengths.to(states[0].device))
        mask = torch.arange(states[0].shape[1], device=states[0].device)[None, :] < frames[:, None]
        return self.backend(states, mask[:, None, :])


def adapter_root(model: SpeakerModel) -> nn.Module:
    """The module adapters go into: the built-in backbone, or the transformers model of an SSL one.

    Its module names (``encoder.layers.N.attention.q_proj``) are those the svd stage writes.
    """
    backbone = model.backbone
    return backbone.model if hasattr(backbone, "model") else backbone


def build_backbone(cfg: ModelConfig, ssl_config: Mapping[str, Any] | None = None) -> nn.Module:
    """A backbone for ``cfg``: builtin randomly initialised; wavlm/hubert loaded from ``cfg.path``.

    With ``ssl_config`` (a transformers config dict from a final.pt) an SSL backbone is built
    from it instead of read from disk, for loading a state dict afterwards.
    """
    if cfg.backbone == "builtin":
        return BuiltinBackbone(cfg.builtin)
    from spectral.models.ssl import load_ssl_backbone, ssl_backbone_from_config

    if ssl_config is not None:
        return ssl_backbone_from_config(dict(ssl_config), cfg.backbone)
    return load_ssl_backbone(cfg.path, cfg.backbone)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a ``final.pt`` with ``weights_only=True``; InputError naming the file when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such checkpoint (run the stage that writes it first)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InputError(path, f"cannot read the checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT or "model" not in ckpt or "config" not in ckpt:
        raise InputError(path, f"not a {CHECKPOINT_FORMAT} checkpoint (a final.pt of the pretrain or finetune stage)")
    check_checkpoint_config(path, ckpt)
    return ckpt



def load_pretrained_builtin(path: str | Path, expected: BuiltinConfig | None = None) -> tuple[BuiltinBackbone, dict[str, Any]]:
    """The builtin backbone of a pretrain stage's ``final.pt``, and the checkpoint.

    With ``expected``, a checkpoint whose backbone has another shape is refused naming both.
    Raises InputError naming the file when the weights do not fit the shape it records."""
    ckpt = read_checkpoint(path)
    saved = BuiltinConfig.from_dict(ckpt["config"]["model"]["builtin"])
    if expected is not None and saved != expected:
        raise InputError(path, f"holds a builtin backbone of shape {saved.to_dict()}, but model.builtin is "
                               f"{expected.to_dict()}; rerun pretrain or fix the config")
    backbone = BuiltinBackbone(saved)
    state = {k[len("backbone."):]: v for k, v in ckpt["model"].items() if k.startswith("backbone.")}
    try:
        backbone.load_state_dict(state)
    except RuntimeError as err:
        raise InputError(path, f"the backbone weights do not fit ({err})") from None
    return backbone, ckpt

def _key_differences(saved: Any, expected: Mapping[str, Any], where: str) -> list[str]:
    """Keys of ``expected`` (nested dicts) missing from ``saved`` or ``saved`` keys it lacks."""
    if not isinstance(saved, Mapping):
        return [f"{where} is a {type(saved).__name__}, not a mapping"]
    out = [f"{where}.{k} missing" for k in sorted(set(expected) - set(saved))]
    out += [f"{where}.{k} unknown" for k in sorted(set(saved) - set(expected))]
    for key, value in expected.items():
        if isinstance(value, Mapping) and key in saved:
            out += _key_differences(saved[key], value, f"{where}.{key}")
    return out


#: Settings added after checkpoints existed that only change how a model is *initialised*, with the
#: one value every earlier checkpoint was made with: filled in where missing, not refused.
KEYS_NEWER_THAN_CHECKPOINTS: dict[tuple[str, ...], Any] = {("model", "builtin", "qk_init_scale"): 1.0}


def _fill_keys_newer_than(config: Any) -> None:
    for (*sections, key), value in KEYS_NEWER_THAN_CHECKPOINTS.items():
        node = config
        for section in sections:
            node = node.get(section) if isinstance(node, Mapping) else None
        if isinstance(node, dict) and key not in node:
            node[key] = value


def check_checkpoint_config(path: str | Path, ckpt: Mapping[str, Any]) -> tuple[ModelConfig, BackendConfig]:
    """The model and back-end settings a checkpoint was written with, checked key by key.

    A checkpoint must say exactly how its model was built: a missing key (which would take
    today's default, perhaps not the one it was trained with) or an unknown one is an
    :class:`InputError` naming the file and the keys, as is a bad value or no speaker list.
    """
    config = ckpt.get("config")
    if not isinstance(config, Mapping):
        raise InputError(path, "its 'config' is not a mapping of settings")
    _fill_keys_newer_than(config)
    problems = []
    for section, expected in (("model", ModelConfig().to_dict()), ("backend", BackendConfig().to_dict())):
        problems += _key_differences(config.get(section, None), expected, f"config.{section}") if section in config \
            else [f"config.{section} missing"]
    if not isinstance(ckpt.get("speakers"), (list, tuple)):
        problems.append("speakers (the list of training speakers) missing")
    if problems:
        raise InputError(path, "checkpoint config does not match this version's settings: " + "; ".join(problems))
    try:
        return ModelConfig.from_dict(config["model"]), BackendConfig.from_dict(config["backend"])
    except (TypeError, ValueError) as err:
        raise InputError(path, f"checkpoint config holds a bad value: {err}") from None


def load_model_checkpoint(path: str | Path) -> tuple[SpeakerModel, dict[str, Any]]:
    """Rebuild the (merged) SpeakerModel a ``final.pt`` holds; return (model in eval mode, checkpoint)."""
    ckpt = read_checkpoint(path)
    model_cfg, backend_cfg = check_checkpoint_config(path, ckpt)
    try:
        backbone = build_backbone(model_cfg, ssl_config=ckpt["config"].get("ssl_config"))
    except (TypeError, ValueError, KeyError) as err:
        raise InputError(path, f"cannot rebuild the backbone its config describes ({err})") from None
    model = SpeakerModel(backbone, backend_cfg, len(ckpt["speakers"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        raise InputError(path, f"the weights do not fit the model its config describes ({err})") from None
    return model.eval(), ckpt
