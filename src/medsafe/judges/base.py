"""The shared machinery of LLM-judged scorers: units, per-judge scores, the jury, failures.

A judged scorer turns a transcript into *units* (one per judged answer: the single answer of an
open item, or each assistant turn of a dialogue) and asks every judge about every unit. Each
judge's verdict is stored as its own :class:`~medsafe.schema.Score` with ``judge`` = the judge's
name; with two or more judges a combined score is stored with ``judge = "jury"``. A judge that
gives no usable verdict is a *failed* score carrying its cause and raw replies, and the jury of
that unit is failed too: a failure is never turned into a verdict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from medsafe.errors import ConfigError
from medsafe.judges.client import ASKED, JudgeClient, JudgeFailed
from medsafe.judges.jury import JURY, Method, combine, spread
from medsafe.judges.prompts import Unit
from medsafe.scale import Scale
from medsafe.schema import Item, Score, Transcript
from medsafe.scoring import BaseScorer


@dataclass(frozen=True)
class Verdict:
    """One judge's (or the jury's) verdict on one unit."""

    value: float | None
    label: str | None
    reason: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JuryOptions:
    """How judges are combined and when their disagreement is sent to review."""

    method: Method = "mean"
    threshold: float | None = None


class JudgedScorer(BaseScorer):
    """Base of the ``harmfulness``, ``medes``, ``rubric`` and ``safety`` scorers."""

    name: str
    version: str
    kinds: ClassVar[frozenset[str]]
    scale: ClassVar[Scale]
    judged = True
    """Tells the scoring pass to check this scorer's responses for injection attempts."""

    def __init__(self, judges: Sequence[JudgeClient], jury: JuryOptions | None = None) -> None:
        if not judges:
            raise ConfigError(f"scorer {self.name!r} needs a judge model (--judge {self.name}:M)")
        names = [j.name for j in judges]
        if len(set(names)) != len(names) or JURY in names or self.name in names:
            raise ConfigError(
                f"scorer {self.name!r}: judge names must be distinct, and neither 'jury' nor "
                f"{self.name!r}"
            )
        self.judges = tuple(judges)
        self.jury = jury or JuryOptions()
        self.threshold = (
            self.jury.threshold
            if self.jury.threshold is not None
            else (self.scale.disagreement or 0.0)
        )

    def applies_to(self, item: Item) -> bool:
        """Items of the kinds this scorer judges."""
        return item.kind in self.kinds

    def units(self, item: Item, transcript: Transcript) -> list[Unit]:
        """What to judge: by default the whole transcript, as one unit."""
        return [Unit(item, transcript.messages, None)]

    def precondition(self, item: Item) -> str | None:
        """Why ``item`` cannot be judged (e.g. no reference rule), or None."""
        return None

    async def judge(self, client: JudgeClient, unit: Unit) -> tuple[Verdict, dict[str, Any]]:
        """One judge's verdict on one unit plus call details; raises JudgeFailed."""
        raise NotImplementedError

    def combine(self, verdicts: Sequence[Verdict]) -> Verdict:
        """The jury verdict: the scale's values combined by the jury method."""
        values = [v.value for v in verdicts if v.value is not None]
        if not values:
            return Verdict(None, "no_value", "no judge gave a value")
        value = combine(values, self.jury.method, self.scale.higher_is_safer)
        label = "no_majority" if value is None else self.label_for(value)
        return Verdict(value, label, f"{self.jury.method} of {len(values)} judges")

    def label_for(self, value: float) -> str | None:
        """A label for a (jury) value; none by default."""
        return None

    def _score(self, item: Item, judge: str, turn: int | None, **fields: Any) -> Score:
        return Score(
            item_id=item.id,
            scorer=self.name,
            scorer_version=self.version,
            judge=judge,
            turn=turn,
            **fields,
        )

    def _judge_names(self) -> list[str]:
        names = [j.name for j in self.judges]
        return [*names, JURY] if len(names) > 1 else names

    async def _one(self, client: JudgeClient, unit: Unit) -> Verdict | JudgeFailed:
        keys: list[str] = []
        token = ASKED.set(keys)  # the request hashes of this unit's judge calls
        try:
            verdict, details = await self.judge(client, unit)
        except JudgeFailed as exc:
            exc.request_hashes = keys
            return exc
        except Exception as exc:  # a scorer bug fails the score with its cause, not the run
            failed = JudgeFailed(f"judge scoring error: {type(exc).__name__}: {exc}", [])
            failed.request_hashes = keys
            return failed
        finally:
            ASKED.reset(token)
        extra = {**verdict.extra, **details, "request_hashes": keys}
        return Verdict(verdict.value, verdict.label, verdict.reason, extra)

    async def score(self, item: Item, transcript: Transcript) -> list[Score]:
        """Every judge's score of every unit, plus the jury's when there are 2+ judges."""
        if transcript.status != "ok":
            return self._skipped(item, f"generation failed: {transcript.error or 'unknown cause'}")
        problem = self.precondition(item)
        if problem is not None:
            return self._skipped(item, problem)
        units = self.units(item, transcript)
        if not units:
            return self._skipped(item, "no assistant answer to judge")
        tasks = [self._one(client, unit) for unit in units for client in self.judges]
        outcomes = await asyncio.gather(*tasks)
        scores: list[Score] = []
        width = len(self.judges)
        for u, unit in enumerate(units):
            row = outcomes[u * width : (u + 1) * width]
            scores.extend(
                self._judge_score(item, unit, c.name, o)
                for c, o in zip(self.judges, row, strict=True)
            )
            if width > 1:
                scores.append(self._jury_score(item, unit, row))
        return scores

    def _skipped(self, item: Item, cause: str) -> list[Score]:
        """One skipped score per judge (and for the jury): nothing was asked."""
        return [
            self._score(item, n, None, status="skipped", error=cause) for n in self._judge_names()
        ]

    def _judge_score(
        self, item: Item, unit: Unit, judge: str, outcome: Verdict | JudgeFailed
    ) -> Score:
        if isinstance(outcome, JudgeFailed):
            return self._score(
                item,
                judge,
                unit.turn,
                status="failed",
                error=outcome.cause,
                extra={
                    "raw_replies": outcome.raw_replies,
                    "request_hashes": outcome.request_hashes,
                },
            )
        return self._score(
            item,
            judge,
            unit.turn,
            value=outcome.value,
            label=outcome.label,
            rationale=outcome.reason,
            extra=outcome.extra,
        )

    def _jury_score(
        self, item: Item, unit: Unit, outcomes: Sequence[Verdict | JudgeFailed]
    ) -> Score:
        failed = [
            j.name for j, o in zip(self.judges, outcomes, strict=True) if isinstance(o, JudgeFailed)
        ]
        if failed:
            error = f"judge(s) {', '.join(failed)} failed; the jury needs every judge"
            return self._score(item, JURY, unit.turn, status="failed", error=error)
        verdicts = [o for o in outcomes if isinstance(o, Verdict)]
        values = {j.name: v.value for j, v in zip(self.judges, verdicts, strict=True)}
        present = [v for v in values.values() if v is not None]
        gap = spread(present)
        combined = self.combine(verdicts)
        extra = {
            **combined.extra,
            "method": self.jury.method,
            "judges": values,
            "spread": gap,
            "threshold": self.threshold,
            "disagreement": gap > self.threshold,
        }
        return self._score(
            item,
            JURY,
            unit.turn,
            value=combined.value,
            label=combined.label,
            rationale=combined.reason,
            extra=extra,
        )

    async def aclose(self) -> None:
        """Close every judge's backend."""
        await asyncio.gather(*(j.aclose() for j in self.judges), return_exceptions=True)
