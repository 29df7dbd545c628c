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

import sys
import types

from spectral import lazy_exports

# Every name is imported on first use (PEP 562), so that importing the torch-free settings
# (spectral.adapters.config) does not import torch through this package.
_WHERE = {
    "LAYER_CLASSES": "api", "adapter_layers": "api", "adapter_state_dict": "api", "apply_adapters": "api",
    "count_trainable": "api", "find_targets": "api", "load_adapters": "api", "merge_adapters": "api",
    "AdapterLayer": "base",
    "METHODS": "config", "AdapterConfig": "config", "matches_target": "config",
    "SVD_METHODS": "decompose", "decompose": "decompose",
    "DoRALayer": "dora", "LowRankLayer": "lowrank",
    "SpectralFTLayer": "spectralft", "SpectralRotLayer": "spectralft",
}


__getattr__ = lazy_exports(__name__, _WHERE)


class _Package(types.ModuleType):
    """``spectral.adapters.decompose`` names the function, as the eager imports had it: importing
    the submodule of that name would otherwise bind the module over it."""

    def __setattr__(self, name: str, value) -> None:
        if name == "decompose" and isinstance(value, types.ModuleType):
            value = value.decompose
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
