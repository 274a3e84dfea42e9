"""Frozen, JSON-friendly result records shared by the statistics functions."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def to_jsonable(value: Any) -> Any:
    """Recursively convert to plain JSON types; NaN and +/-inf become ``None``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


class _JsonMixin:
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict of this record (non-finite floats become ``None``)."""
        out: dict[str, Any] = to_jsonable(self)
        return out


@dataclass(frozen=True)
class Interval(_JsonMixin):
    """A two-sided confidence interval ``[lo, hi]`` at ``level``."""

    lo: float
    hi: float
    method: str
    level: float = 0.95

    @property
    def width(self) -> float:
        """``hi - lo``."""
        return self.hi - self.lo

    def contains(self, value: float) -> bool:
        """Whether ``lo <= value <= hi``."""
        return self.lo <= value <= self.hi


@dataclass(frozen=True)
class Estimate(_JsonMixin):
    """A point estimate with its confidence interval."""

    value: float
    ci: Interval


@dataclass(frozen=True)
class TestResult(_JsonMixin):
    """A hypothesis test: statistic, p-value and an effect size with its name."""

    __test__ = False  # not a pytest test class

    test: str
    statistic: float
    p: float
    effect_size: float
    effect_name: str
    n: int
    extra: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PairedDiff(_JsonMixin):
    """Mean paired difference ``b - a`` with a bootstrap CI and two-sided p-value.

    Unpacks as ``delta, ci, p = paired_bootstrap_diff(a, b)``.
    """

    delta: float
    ci: Interval
    p: float
    n: int

    def __iter__(self) -> Iterator[Any]:
        return iter((self.delta, self.ci, self.p))


@dataclass(frozen=True)
class DetectableEffect(_JsonMixin):
    """Smallest absolute difference in proportions detectable with the given design."""

    effect: float
    n: int
    alpha: float
    power: float
    design: str
    p0: float | None
    discordant_rate: float | None


@dataclass(frozen=True)
class Disagreements(_JsonMixin):
    """Items where two score vectors differ by more than ``threshold``."""

    indices: tuple[int, ...]
    share: float
    n: int
    threshold: float


@dataclass(frozen=True)
class TurnSummary(_JsonMixin):
    """Per-turn summary of a score: count, mean, median, cluster-bootstrap CI of the mean."""

    turn: int
    n: int
    n_clusters: int
    mean: float
    median: float
    ci: Interval
