"""Putting adapters into a model and taking them out: apply, merge, state, load, count.

The finetune stage calls :func:`apply_adapters` on the backbone (with the factors the svd
stage wrote), trains, and saves :func:`adapter_state_dict`; the embed stage restores it with
:func:`load_adapters` and calls :func:`merge_adapters` for inference at the base model's
cost. Method ``full`` wraps nothing: every parameter of the model trains, and the state
functions treat those parameters as its adapter tensors (:mod:`spectral.adapters.full`).
Reads and writes no files.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from spectral.adapters.base import AdapterLayer
from spectral.adapters.config import USES_FACTORS, AdapterConfig, matches_target  # noqa: F401 (USES_FACTORS re-exported)
from spectral.adapters.dora import DoRALayer
from spectral.adapters.full import full_parameters, is_full, mark_full, unmark_full
from spectral.adapters.lowrank import LowRankLayer
from spectral.adapters.spectralft import SpectralFTLayer, SpectralRotLayer

#: The wrapper class of every method that wraps (``full`` and ``frozen`` wrap nothing).
LAYER_CLASSES: dict[str, type[AdapterLayer]] = {
    "spectralft": SpectralFTLayer,
    "spectralft_rot": SpectralRotLayer,
    "lora": LowRankLayer,
    "pissa": LowRankLayer,
    "milora": LowRankLayer,
    "dora": DoRALayer,
}


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def find_targets(model: nn.Module, targets: list[str] | tuple[str, ...]) -> list[str]:
    """Qualified names of the ``nn.Linear`` modules of ``model`` that ``targets`` select, in order."""
    return [
        name
        for name, module in model.named_modules()
        if name and isinstance(module, nn.Linear) and matches_target(name, targets)
    ]


def adapter_layers(model: nn.Module) -> dict[str, AdapterLayer]:
    """Every adapter wrapper in ``model``, keyed by its qualified module name."""
    return {name: module for name, module in model.named_modules() if isinstance(module, AdapterLayer)}


def apply_adapters(
    model: nn.Module,
    cfg: AdapterConfig,
    factors: Mapping[str, Mapping[str, Tensor]] | None = None,
) -> nn.Module:
    """Wrap every ``nn.Linear`` of ``model`` that ``cfg.targets`` select, in place; return ``model``.

    Every parameter of ``model`` is frozen first; then each matched layer (any shape) is
    replaced by its method's wrapper, whose adapter tensors are the only trainable ones
    (``frozen``: nothing is wrapped or trained). ``full`` wraps nothing and ignores
    ``targets``: every parameter of ``model`` becomes trainable (full fine-tuning of the
    whole backbone). ``factors`` optionally maps module names (as in ``model.named_modules()``) to
    factor dicts from the svd stage (:func:`spectral.svd.load_factors`), so the
    spectral methods and PiSSA/MiLoRA do not decompose again; they are checked against each
    weight. Raises ValueError when nothing matches, when the model already holds adapters,
    when k or r exceed a matrix's min(m, n), or when ``factors`` lack a matched module.
    """
    if adapter_layers(model) or is_full(model):
        raise ValueError("the model already holds adapters; apply them to the base model (or merge_adapters first)")
    if cfg.method == "full":
        if not any(True for _ in model.parameters()):
            raise ValueError("method full: the model has no parameters to train")
        return mark_full(model)
    names = find_targets(model, cfg.targets)
    if not names:
        linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        shown = ", ".join(linears[:8]) + (" ..." if len(linears) > 8 else "")
        raise ValueError(
            f"no nn.Linear module matches targets {cfg.targets}; the model's Linear modules are: "
            f"{shown or '(none)'}"
        )
    model.requires_grad_(False)
    if cfg.method == "frozen":
        return model
    use_factors = factors is not None and cfg.method in USES_FACTORS
    if use_factors:
        missing = [n for n in names if n not in factors]
        if missing:
            held = list(factors)
            raise ValueError(
                f"the factors hold no entry for {len(missing)} matched module(s), e.g. {missing[0]!r} "
                f"(they hold {len(held)}: {', '.join(held[:4])}{' ...' if len(held) > 4 else ''})"
            )
    layer_class = LAYER_CLASSES[cfg.method]
    for name in names:
        base = model.get_submodule(name)
        entry = dict(factors[name]) if use_factors else None
        _set_submodule(model, name, layer_class(base, cfg, entry, name))
    return model


def merge_adapters(model: nn.Module) -> nn.Module:
    """Replace each adapter wrapper in ``model`` by a plain frozen ``nn.Linear`` holding W'; return ``model``.

    The merged model computes the same function at the base model's cost, and holds no
    adapter tensors any more. A fully fine-tuned model (method ``full``) has nothing to
    fold in: its parameters are frozen again and it counts as a base model.
    """
    if is_full(model):
        return unmark_full(model)
    for name, layer in adapter_layers(model).items():
        _set_submodule(model, name, layer.merged_linear())
    return model


def adapter_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The trainable adapter tensors of ``model`` (detached copies), keyed "<module>.<tensor>".

    Frozen bases and the fixed singular factors are left out: restore with
    :func:`load_adapters` into the base model after :func:`apply_adapters` with the same
    config and the same factors (the same ``factors.pt``, or none both times). The
    model's own ``state_dict()`` holds the factors as buffers, if a self-contained
    checkpoint is wanted. For method ``full`` the trained tensors are every parameter of
    the model, keyed as in ``model.named_parameters()``.
    """
    return {key: param.detach().clone() for key, param in _trained_tensors(model).items()}


def _trained_tensors(model: nn.Module) -> dict[str, nn.Parameter]:
    if is_full(model):
        return full_parameters(model)
    params: dict[str, nn.Parameter] = {}
    for name, layer in adapter_layers(model).items():
        for key, param in layer.adapter_parameters().items():
            params[f"{name}.{key}"] = param
    return params


def load_adapters(model: nn.Module, state: Mapping[str, Tensor]) -> nn.Module:
    """Copy ``state`` (from :func:`adapter_state_dict`) into the adapters of ``model``; return ``model``.

    Strict: raises ValueError listing missing or unexpected keys, or a shape that differs.
    """
    params = _trained_tensors(model)
    missing = sorted(set(params) - set(state))
    unexpected = sorted(set(state) - set(params))
    if missing or unexpected:
        raise ValueError(
            "adapter state does not fit the model: "
            f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}"
        )
    with torch.no_grad():
        for key, param in params.items():
            value = state[key]
            if tuple(value.shape) != tuple(param.shape):
                raise ValueError(f"adapter tensor {key!r} has shape {tuple(value.shape)}, the model expects {tuple(param.shape)}")
            param.copy_(value.to(device=param.device, dtype=param.dtype))
    return model


def count_trainable(model: nn.Module) -> int:
    """Number of trainable values (elements of parameters with requires_grad) in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
