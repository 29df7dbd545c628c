"""Spectral adapters: SpectralFT and its baselines as wrappers of frozen ``nn.Linear`` layers.

Public API::

    cfg = AdapterConfig(method="spectralft", targets=["q_proj", "k_proj"], rank=16, top_k=256)
    apply_adapters(backbone, cfg, factors=load_factors("exp/svd/wavlm/factors.pt"))
    ...train...
    state = adapter_state_dict(backbone)        # only the trainable adapter tensors
    load_adapters(fresh_adapted_backbone, state)
    merge_adapters(backbone)                    # plain nn.Linear again, zero overhead

Methods: spectralft, spectralft_rot, lora, pissa, milora, dora, full, frozen (see
:mod:`spectral.adapters.config`). One module per method family: ``spectralft`` (additive and
rotational), ``lowrank`` (LoRA, PiSSA, MiLoRA), ``dora``, ``full`` (every backbone
parameter trains; nothing is wrapped); ``base`` holds the shared wrapper, ``decompose`` the SVD, ``api`` the model-level functions.
"""

from spectral.adapters.api import (
    LAYER_CLASSES,
    adapter_layers,
    adapter_state_dict,
    apply_adapters,
    count_trainable,
    find_targets,
    load_adapters,
    merge_adapters,
)
from spectral.adapters.base import AdapterLayer
from spectral.adapters.config import METHODS, AdapterConfig, matches_target
from spectral.adapters.decompose import SVD_METHODS, decompose
from spectral.adapters.dora import DoRALayer
from spectral.adapters.lowrank import LowRankLayer
from spectral.adapters.spectralft import SpectralFTLayer, SpectralRotLayer

__all__ = [
    "LAYER_CLASSES",
    "METHODS",
    "SVD_METHODS",
    "AdapterConfig",
    "AdapterLayer",
    "DoRALayer",
    "LowRankLayer",
    "SpectralFTLayer",
    "SpectralRotLayer",
    "adapter_layers",
    "adapter_state_dict",
    "apply_adapters",
    "count_trainable",
    "decompose",
    "find_targets",
    "load_adapters",
    "matches_target",
    "merge_adapters",
]
