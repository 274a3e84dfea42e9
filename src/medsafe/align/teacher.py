"""Chosen answers from a teacher model, kept only when the safety scorer accepts them.

For each item left without a chosen answer, the teacher is asked (greedy first, then sampled at
``temperature`` with seeds 1, 2, ...) until the safety scorer (the guardian by default, and any
judges it is configured with) scores the answer safe on every judge, at most ``tries`` times.
Items never accepted get no chosen answer; backend failures count as rejected tries. Answers are
not stored: a second build asks again (use a cached ``openai/`` server or a ``replay/`` file for
repeatable builds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from medsafe.errors import BackendError, ConfigError
from medsafe.models.base import Backend, BackendOptions, ChatRequest, create_backend
from medsafe.schema import Item, Message, ModelParams, Transcript
from medsafe.scoring import Scorer, ScorerConfig, create_scorer

RUN_ID = "align-teacher"


@dataclass(frozen=True)
class TeacherOptions:
    """Which teacher, how often to retry, how it is judged."""

    model: str
    tries: int = 3
    temperature: float = 0.7
    max_tokens: int = 512
    scorer: str = "guardian"
    base_url: str | None = None


@dataclass
class TeacherReport:
    """Accepted answers by item id, and what it took."""

    answers: dict[str, str] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    failures: int = 0


async def _accepted(scorer: Scorer, item: Item, params: ModelParams, text: str, model: str) -> bool:
    transcript = Transcript(
        run_id=RUN_ID,
        item_id=item.id,
        model=model,
        params=params,
        messages=(*item.messages, Message(role="assistant", content=text)),
        status="ok",
    )
    values = [s.value for s in await scorer.score(item, transcript) if s.turn is None]
    return bool(values) and all(v is not None and v >= 0.5 for v in values)


async def _one(
    backend: Backend, scorer: Scorer, item: Item, opts: TeacherOptions, report: TeacherReport
) -> None:
    for attempt in range(opts.tries):
        params = ModelParams(
            temperature=0.0 if attempt == 0 else opts.temperature,
            max_tokens=opts.max_tokens,
            seed=attempt or None,
        )
        try:
            reply = await backend.complete(ChatRequest(item.messages, params, item=item))
        except BackendError:
            report.failures += 1
            continue
        if reply.text.strip() and await _accepted(scorer, item, params, reply.text, opts.model):
            report.answers[item.id] = reply.text
            report.attempts[item.id] = attempt + 1
            return
    report.rejected.append(item.id)


async def _all(items: Sequence[Item], opts: TeacherOptions) -> TeacherReport:
    backend = create_backend(opts.model, BackendOptions(base_url=opts.base_url))
    scorer = create_scorer(ScorerConfig(opts.scorer))
    report = TeacherReport()
    limit = asyncio.Semaphore(max(1, backend.max_concurrency or 4))

    async def guarded(item: Item) -> None:
        async with limit:
            await _one(backend, scorer, item, opts, report)

    try:
        await asyncio.gather(*(guarded(i) for i in items))
    finally:
        await backend.aclose()
    return report


def teacher_answers(items: Sequence[Item], opts: TeacherOptions) -> TeacherReport:
    """Ask the teacher for each of ``items``; keep the answers the safety scorer accepts."""
    if opts.tries < 1:
        raise ConfigError("--teacher-tries must be at least 1")
    return asyncio.run(_all(items, opts))
