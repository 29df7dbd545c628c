"""Helpers of the settings dataclasses (model, backend, adapter, training): one way to give a
field its help text, one way to build a dataclass from plain data, unknown keys refused
(:class:`Settings`), and one way to check a number (:func:`check_int`, :func:`check_number`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any, ClassVar, TypeVar

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


class Settings:
    """Base of the settings dataclasses: ``to_dict`` (plain data, for json, yaml and checkpoints)
    and ``from_dict`` (unknown keys an error naming them and the ``SECTION``)."""

    SECTION: ClassVar[str] = "settings"

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (json/yaml/checkpoint friendly)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """Build the settings from plain data; unknown keys are an error naming them."""
        return strict_from_dict(cls, data, cls.SECTION)


def check_int(section: str, name: str, value: Any, minimum: int) -> None:
    """ValueError ``<section>.<name> must be an integer >= <minimum>, got <value>`` unless it is one."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{section}.{name} must be an integer >= {minimum}, got {value!r}")


def check_number(section: str, name: str, value: Any, low: float, high: float = math.inf,
                 low_open: bool = False) -> None:
    """ValueError naming ``<section>.<name>`` unless ``value`` is a finite number in [low, high] ((low, high] when ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{section}.{name} must be a finite number, got {value!r}")
    if value < low or value > high or (low_open and value == low):
        bound = f"{'(' if low_open else '['}{low}, {high}]"
        raise ValueError(f"{section}.{name} must be in {bound}, got {value!r}")
