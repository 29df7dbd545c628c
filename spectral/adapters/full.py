"""Full fine-tuning: every parameter of the backbone is trained; nothing is wrapped.

The paper's full fine-tuning baseline. :func:`spectral.adapters.apply_adapters` with method
``full`` calls :func:`mark_full`, which makes every parameter of the model it is given (the
backbone: :func:`spectral.models.adapter_root`) trainable and leaves a mark on that module,
so that :func:`~spectral.adapters.adapter_state_dict`, :func:`~spectral.adapters.load_adapters`
and :func:`~spectral.adapters.merge_adapters` know the trained tensors are the model's own
parameters (keyed by their ``named_parameters`` names). ``targets``, ``rank``, ``top_k``,
``alpha`` and ``dropout`` are ignored. Merging has nothing to fold in: it freezes the
parameters again and removes the mark. Reads and writes no files.
"""

from __future__ import annotations

from torch import nn

#: Attribute that :func:`mark_full` sets on a module whose every parameter is trained.
FULL_MARK = "_spectral_full_finetune"


def mark_full(model: nn.Module) -> nn.Module:
    """Make every parameter of ``model`` trainable and mark it as fully fine-tuned; return ``model``."""
    model.requires_grad_(True)
    setattr(model, FULL_MARK, True)
    return model


def is_full(model: nn.Module) -> bool:
    """Whether ``model`` was adapted with method ``full`` (and not merged since)."""
    return bool(getattr(model, FULL_MARK, False))


def unmark_full(model: nn.Module) -> nn.Module:
    """Freeze every parameter of a fully fine-tuned ``model`` and remove the mark; return ``model``."""
    model.requires_grad_(False)
    if FULL_MARK in model.__dict__:
        delattr(model, FULL_MARK)
    return model


def full_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The trained tensors of a fully fine-tuned ``model``: all its parameters, by qualified name."""
    return dict(model.named_parameters())
