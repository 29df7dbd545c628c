"""Helpers of the settings dataclasses (model, backend, adapter, training): one way to give a
field its help text and one way to build a dataclass from plain data, unknown keys refused."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def help_meta(text: str) -> dict[str, str]:
    """``field(metadata=...)`` of a settings field: its help text (for command lines and the schema)."""
    return {"help": text}


def strict_from_dict(cls: type[T], data: Mapping[str, Any], section: str) -> T:
    """``cls(**data)``; a key ``cls`` has no field for is a ValueError naming it and the known ones."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {section} key(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")
    return cls(**dict(data))
