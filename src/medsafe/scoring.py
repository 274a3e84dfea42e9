"""Scorer plug-ins: read a transcript, write scores. Never call the target model.

A scorer registers a factory under its name together with the scales it declares; the factory
takes a :class:`ScorerConfig` so that a run's stored spec (name, version, judge models, options)
rebuilds exactly the scorer that ran. :class:`BaseScorer` gives every optional capability a
default (``inline``, ``judged``, ``score_many``, ``aclose``), so the runner never probes for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from medsafe.errors import RegistryError
from medsafe.registry import Registry
from medsafe.scale import Scale
from medsafe.schema import Item, Score, ScorerSpec, Transcript


@dataclass(frozen=True)
class ScorerConfig:
    """How to build a scorer: its name, the judge model specs it uses, and options."""

    name: str
    judges: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Scorer(Protocol):
    """Turns one item's transcript into scores (subclass :class:`BaseScorer` to get defaults)."""

    name: str
    version: str
    inline: bool
    """Cheap and model-free: scored as each answer arrives, written with its transcript."""
    judged: bool
    """Asks judge models: its responses are checked for injection attempts."""

    def scales(self) -> dict[str, Scale]:
        """The scale of every score name this scorer writes."""
        ...

    def applies_to(self, item: Item) -> bool:
        """Whether this scorer has anything to say about ``item``."""
        ...

    async def score(self, item: Item, transcript: Transcript) -> list[Score]:
        """Score an ``ok`` transcript; failures become scores with status ``failed``."""
        ...

    async def score_many(
        self, items: Sequence[Item], transcripts: Sequence[Transcript]
    ) -> list[list[Score]]:
        """Score many transcripts (one list of scores per item)."""
        ...

    async def aclose(self) -> None:
        """Release clients (judge sessions) once scoring is over."""
        ...


class BaseScorer:
    """Defaults for a scorer: declare ``name``, ``version`` and ``scale``; write ``score``."""

    name: str
    version: str = "1"
    scale: ClassVar[Scale]
    extra_scales: ClassVar[Mapping[str, Scale]] = {}
    """Scales of further score names the scorer writes (``mcq.partial`` beside ``mcq``)."""
    inline: bool = False
    judged: bool = False
    concurrency: int = 8
    """How many :meth:`score` calls the default :meth:`score_many` runs at once."""

    def scales(self) -> dict[str, Scale]:
        """``{name: scale}`` plus :attr:`extra_scales`."""
        return {self.name: self.scale, **self.extra_scales}

    def applies_to(self, item: Item) -> bool:
        """Every item, unless overridden."""
        return True

    async def score(self, item: Item, transcript: Transcript) -> list[Score]:
        """Score one transcript (override)."""
        raise NotImplementedError(f"scorer {self.name!r} does not implement score()")

    async def score_many(
        self, items: Sequence[Item], transcripts: Sequence[Transcript]
    ) -> list[list[Score]]:
        """:meth:`score` on every pair, at most :attr:`concurrency` at once; results in order.

        The one batched scoring loop: the runner and ``calibrate`` both call it; a scorer that
        is faster on many transcripts at once (the guardian's batched embeddings) overrides it.
        """
        if len(items) != len(transcripts):
            raise ValueError("items and transcripts differ in length")
        semaphore = asyncio.Semaphore(max(1, self.concurrency))

        async def one(item: Item, transcript: Transcript) -> list[Score]:
            async with semaphore:
                return await self.score(item, transcript)

        pairs = zip(items, transcripts, strict=True)
        return list(await asyncio.gather(*(one(i, t) for i, t in pairs)))

    async def aclose(self) -> None:
        """Nothing to release by default."""


ScorerFactory = Callable[[ScorerConfig], Scorer]


@dataclass(frozen=True)
class ScorerEntry:
    """A registered scorer: how to build it, and the scales it declares (known without building)."""

    factory: ScorerFactory
    scales: Mapping[str, Scale]
    builtin: bool = False


scorers: Registry[ScorerEntry] = Registry("scorer")


def register_scorer(
    name: str,
    scales: Scale | Mapping[str, Scale],
    *,
    builtin: bool = False,
    replace_builtin: bool = False,
) -> Callable[[ScorerFactory], ScorerFactory]:
    """Decorator registering a scorer factory under ``name`` with its declared scale(s).

    Registering a name again replaces it (with a warning); a built-in name only with
    ``replace_builtin=True``.
    """
    table = {name: scales} if isinstance(scales, Scale) else dict(scales)
    if name not in table:
        raise RegistryError(f"scorer {name!r} declares no scale for its own name")

    def decorate(factory: ScorerFactory) -> ScorerFactory:
        entry = ScorerEntry(factory, table, builtin)
        scorers.register(name, builtin=builtin, replace_builtin=replace_builtin)(entry)
        return factory

    return decorate


def declared_scales(name: str) -> dict[str, Scale]:
    """The scales a registered scorer declares (imports a declared built-in on first use)."""

    return dict(scorers.get(name).scales)


def create_scorer(config: ScorerConfig) -> Scorer:
    """Build a registered scorer (importing the built-in scorers first)."""

    return scorers.get(config.name).factory(config)


def with_scales(spec: ScorerSpec, scorer: Scorer) -> ScorerSpec:
    """``spec`` carrying the scales ``scorer`` declares (what is stored with the run)."""
    return spec.model_copy(update={"scales": scorer.scales()})


def stamp(scorer: Scorer, scores: Sequence[Score]) -> list[Score]:
    """Scores with the scorer's version stamped on every score name it declares.

    On the hot path (every inline score): nothing is built when every version already matches.
    """
    version = scorer.version
    if all(s.scorer_version == version for s in scores):
        return list(scores)
    names = scorer.scales()
    return [
        s.model_copy(update={"scorer_version": scorer.version})
        if s.scorer in names and s.scorer_version != scorer.version
        else s
        for s in scores
    ]


def merge_specs(base: Sequence[ScorerSpec], judged: Sequence[ScorerSpec]) -> tuple[ScorerSpec, ...]:
    """``base`` plus ``judged``; a scorer in both keeps base's options and gets judged's judges."""
    merged = {s.name: s for s in base}
    for spec in judged:
        old = merged.get(spec.name)
        if old is None:
            merged[spec.name] = spec
        else:
            options = {**old.options, **spec.options}
            merged[spec.name] = ScorerSpec(
                name=spec.name, judges=spec.judges, options=options, scales=old.scales
            )
    return tuple(merged.values())
