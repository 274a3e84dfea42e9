"""What a scorer's values mean: the scale every scorer declares once, stored with its run.

A :class:`Scale` says what kind of values a scorer writes (binary, ordinal, categorical,
continuous), their range, which end is safer, the label names, the *positive* (harmful) rule
used for sensitivity, corrected rates and attack success, and a human title. It is stored with
the run (``ScorerSpec.scales``), so results, reports, ``compare``, ``calibrate`` and the gate read
it from the store and never guess from a scorer's name.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medsafe.errors import ConfigError

ScaleKind = Literal["binary", "ordinal", "categorical", "continuous"]
AlphaLevel = Literal["nominal", "ordinal", "interval", "ratio"]
KappaWeights = Literal["quadratic", "nominal", "none"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_THRESHOLD = re.compile(r"^\s*(<=|>=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class PositiveRule:
    """Labels that are positive (harmful), or a comparison ``value OP threshold``."""

    text: str
    labels: frozenset[str] = frozenset()
    op: str | None = None
    threshold: float | None = None

    def is_positive(self, label: str | None, value: float | None) -> bool | None:
        """Whether a verdict is positive; None when the verdict cannot tell (no value/label)."""
        if self.op is not None and self.threshold is not None:
            if value is None:
                return None
            return _OPS[self.op](value, self.threshold)
        if label is None:
            return None
        return label in self.labels

    def on_truth(self, truth: str | float) -> bool | None:
        """The rule applied to a human verdict (a label or a score)."""
        if isinstance(truth, str):
            return self.is_positive(truth, None)
        return self.is_positive(None, truth)


def parse_rule(text: str) -> PositiveRule:
    """``">=4"`` / ``"<5"`` (a threshold) or ``"unsafe,risky"`` (labels)."""
    match = _THRESHOLD.match(text)
    if match:
        return PositiveRule(text=text.strip(), op=match.group(1), threshold=float(match.group(2)))
    labels = frozenset(p.strip() for p in text.split(",") if p.strip())
    if not labels or any(ch in text for ch in "<>="):
        raise ConfigError(
            f"positive rule {text!r}: give labels (unsafe or unsafe,risky) or a threshold (>=4, <5)"
        )
    return PositiveRule(text=",".join(sorted(labels)), labels=labels)


class Scale(BaseModel):
    """How one scorer's values are read (declared by the scorer, stored with the run)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ScaleKind
    title: str = Field(min_length=1)
    """What the figure is, for people: "Guardian safe rate", "Harmfulness (1-5)"."""
    lo: float
    hi: float
    higher_is_safer: bool = True
    labels: tuple[str, ...] = ()
    """Label names the scorer writes (e.g. ``safe_helpful``, ``refusal``, ``unsafe``)."""
    levels: tuple[float, ...] = ()
    """The discrete values of an ordinal or binary scale (empty for continuous)."""
    positive: str | None = None
    """What counts as harmful: labels (``unsafe``) or a threshold (``>=4``); None: no rule."""
    null_value: float | None = None
    """The value of an ok score that has none (an unextracted MCQ answer counts as 0)."""
    disagreement: float | None = None
    """Default judge disagreement threshold (``|a - b| > disagreement`` goes to review)."""
    kappa: KappaWeights = "none"
    """Whether Cohen's kappa is meaningful on the values, and with which weights."""
    quality: str | None = None
    """A score extra holding the quality of an answer that is not harmful (MedES's Q1-Q4
    average); results report its mean over non-harmful answers as ``quality_score``."""

    @model_validator(mode="after")
    def _consistent(self) -> Scale:
        if self.hi < self.lo:
            raise ValueError(f"scale {self.title!r}: hi {self.hi} is below lo {self.lo}")
        if self.positive is not None:
            try:
                parse_rule(self.positive)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        bad = [v for v in self.levels if not self.lo <= v <= self.hi]
        if bad:
            raise ValueError(f"scale {self.title!r}: levels {bad} outside [{self.lo}, {self.hi}]")
        return self

    @property
    def is_share(self) -> bool:
        """Values in [0, 1] whose mean reads as a share (shown as a percentage)."""
        return self.lo == 0.0 and self.hi == 1.0

    @property
    def alpha_level(self) -> AlphaLevel:
        """Krippendorff's level of measurement for this kind of scale."""
        if self.kind in ("binary", "categorical"):
            return "nominal"
        return "ordinal" if self.kind == "ordinal" else "interval"

    def rule(self) -> PositiveRule | None:
        """The parsed positive rule, or None."""
        return parse_rule(self.positive) if self.positive else None

    def is_positive(self, label: str | None, value: float | None) -> bool | None:
        """Whether one verdict is harmful under the scale's rule (None: no rule or no verdict)."""
        rule = self.rule()
        return None if rule is None else rule.is_positive(label, value)

    def safer(self, a: float, b: float) -> bool:
        """Whether value ``a`` is safer than value ``b`` on this scale."""
        return a > b if self.higher_is_safer else a < b

    def axis(self) -> tuple[float, float]:
        """The axis range a plot of this scale's means uses (its whole range)."""
        return self.lo, self.hi

    def in_range(self, value: float) -> bool:
        """Whether ``value`` lies on the scale (and on one of its levels when it has them)."""
        if not self.lo <= value <= self.hi:
            return False
        return not self.levels or value in self.levels


def unknown_scale(name: str, lo: float, hi: float) -> Scale:
    """The scale of a score whose scorer declared none (e.g. a plug-in no longer installed):
    continuous over the values seen, direction assumed higher-is-safer and said so in the title.
    """
    return Scale(
        kind="continuous",
        title=f"{name} (scale not declared; higher assumed safer)",
        lo=min(lo, hi),
        hi=max(lo, hi),
    )
