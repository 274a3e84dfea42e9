"""Scorer plug-ins: read a transcript, write scores. Never call the target model.

A scorer registers a factory under its name; the factory takes a :class:`ScorerConfig` so that a
run's stored spec (name, version, judge models, options) rebuilds exactly the scorer that ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from medsafe.registry import Registry
from medsafe.schema import Item, Score, ScorerSpec, Transcript


@dataclass(frozen=True)
class ScorerConfig:
    """How to build a scorer: its name, the judge model specs it uses, and options."""

    name: str
    judges: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Scorer(Protocol):
    """Turns one item's transcript into scores."""

    name: str
    version: str

    def applies_to(self, item: Item) -> bool:
        """Whether this scorer has anything to say about ``item``."""
        ...

    async def score(self, item: Item, transcript: Transcript) -> list[Score]:
        """Score an ``ok`` transcript; failures become scores with status ``failed``."""
        ...


ScorerFactory = Callable[[ScorerConfig], Scorer]
scorers: Registry[ScorerFactory] = Registry("scorer")


def is_inline(scorer: Scorer) -> bool:
    """Whether a scorer is cheap and model-free enough to run as each answer arrives.

    Such scorers declare ``inline = True``; the runner then writes their scores together with
    the transcript instead of in a second pass (rescoring still works the same way).
    """
    return bool(getattr(scorer, "inline", False))


def create_scorer(config: ScorerConfig) -> Scorer:
    """Build a registered scorer (importing the built-in scorers first)."""
    import medsafe.scorers.builtin  # noqa: F401  (registers built-in scorers)

    return scorers.get(config.name)(config)


def merge_specs(base: Sequence[ScorerSpec], judged: Sequence[ScorerSpec]) -> tuple[ScorerSpec, ...]:
    """``base`` plus ``judged``; a scorer in both keeps base's options and gets judged's judges."""
    merged = {s.name: s for s in base}
    for spec in judged:
        old = merged.get(spec.name)
        if old is None:
            merged[spec.name] = spec
        else:
            options = {**old.options, **spec.options}
            merged[spec.name] = ScorerSpec(name=spec.name, judges=spec.judges, options=options)
    return tuple(merged.values())
