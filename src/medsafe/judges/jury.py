"""Combining N judges' verdicts on one unit into one jury value.

Methods: ``mean``; ``min`` and ``max``; ``conservative`` (the less safe value: ``min`` for
higher-is-safer scales such as safety 0-10, ``max`` for harmfulness 1-5); ``majority`` (the value
more than half of the judges gave, else no value: a split jury is reported as ``no_majority``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Literal, get_args

from medsafe.errors import ConfigError

Method = Literal["mean", "min", "max", "conservative", "majority"]
METHODS: tuple[str, ...] = get_args(Method)
JURY = "jury"
"""The ``judge`` name of the combined score (a judge's own name is its config name or spec)."""


def check_method(value: str) -> Method:
    """``value`` as a method, or a ConfigError listing the methods."""
    if value not in METHODS:
        raise ConfigError(f"unknown jury method {value!r} (known: {', '.join(METHODS)})")
    method: Method = value  # type: ignore[assignment]
    return method


def combine(values: Sequence[float], method: Method, higher_is_safer: bool) -> float | None:
    """The jury value of ``values`` (at least one), or None when a majority jury is split."""
    if not values:
        raise ValueError("no values to combine")
    if method == "conservative":
        method = "min" if higher_is_safer else "max"
    if method == "mean":
        return sum(values) / len(values)
    if method == "min":
        return min(values)
    if method == "max":
        return max(values)
    value, count = Counter(values).most_common(1)[0]
    return value if count * 2 > len(values) else None


def spread(values: Sequence[float]) -> float:
    """``max - min`` of the judges' values (0 for one judge)."""
    return max(values) - min(values) if values else 0.0
