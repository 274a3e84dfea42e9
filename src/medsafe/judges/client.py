"""The judge-call client: one judge model, bounded retries for transport *and* parse failures.

Transport failures (timeouts, 429/5xx, connection errors) are retried by
:func:`medsafe.models.retry.call_with_retries`. A reply that cannot be parsed is retried up to
``parse_retries`` more times, each time showing the judge its own reply and why it was rejected.
When every attempt fails, :class:`JudgeFailed` carries the cause and every raw reply, so that
the scorer stores a *failed* score with them: a failure is never defaulted to a verdict.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, TypeVar

from medsafe.judges.parse import ReplyError
from medsafe.models.base import Backend, ChatRequest
from medsafe.models.config import NamedModel, create_named_backend
from medsafe.models.retry import RetryPolicy, call_with_retries
from medsafe.schema import Message, ModelParams

T = TypeVar("T")
JUDGE_DEFAULTS = ModelParams(temperature=0.0, max_tokens=1024)
"""Judge parameters unless the named model sets its own (deterministic, room for a reason)."""
RAW_CHARS = 4000


class JudgeFailed(Exception):
    """A judge gave no usable verdict: ``cause`` and every raw reply it sent."""

    def __init__(self, cause: str, raw_replies: list[str]) -> None:
        super().__init__(cause)
        self.cause = cause
        self.raw_replies = [r[:RAW_CHARS] for r in raw_replies]


def judge_params(named: NamedModel) -> ModelParams:
    """:data:`JUDGE_DEFAULTS` overridden by the fields the named model sets."""
    if named.params is None:
        return JUDGE_DEFAULTS
    return JUDGE_DEFAULTS.model_copy(update=named.params.model_dump(exclude_unset=True))


def correction(reason: str) -> str:
    """The message sent after an unparseable reply."""
    return (
        f"Your reply could not be used: {reason}. Answer again with only the JSON object "
        "described above (keys as specified, values in range), and nothing else."
    )


class JudgeClient:
    """Asks one judge model; at most ``concurrency`` of its calls are in flight."""

    def __init__(
        self,
        name: str,
        named: NamedModel,
        *,
        backend: Backend | None = None,
        concurrency: int = 8,
        timeout_s: float = 120.0,
        retries: int = 3,
        parse_retries: int = 2,
        seed: int = 0,
    ) -> None:
        self.name = name
        self.named = named
        self.params = judge_params(named)
        self.backend = backend or create_named_backend(named, timeout_s)
        self.timeout_s = timeout_s
        self.policy = RetryPolicy(retries=retries)
        self.parse_retries = parse_retries
        self._rng = random.Random(seed)
        # in-flight calls: ``concurrency``, or fewer when the backend needs it (a local model)
        cap = getattr(self.backend, "max_concurrency", None)
        self._limit = max(1, min(concurrency, cap) if cap else concurrency)
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _slot(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._semaphore, self._loop = asyncio.Semaphore(self._limit), loop
        return self._semaphore

    def response_format(self, schema: dict[str, Any]) -> dict[str, Any] | None:
        """The ``response_format`` to send, per the named model's declared support."""
        if self.named.response_format == "json_object":
            return {"type": "json_object"}
        if self.named.response_format == "json_schema":
            return {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": schema, "strict": True},
            }
        return None

    async def ask(
        self,
        messages: tuple[Message, ...],
        parse: Callable[[str], T],
        schema: dict[str, Any],
    ) -> tuple[T, str, int]:
        """``(parsed, raw reply, attempts)``; raises :class:`JudgeFailed` when nothing parses."""
        raws: list[str] = []
        conversation = messages
        fmt = self.response_format(schema)
        for attempt in range(self.parse_retries + 1):
            request = ChatRequest(messages=conversation, params=self.params, response_format=fmt)
            async with self._slot():
                record = await call_with_retries(
                    self.backend,
                    request,
                    "",
                    timeout_s=self.timeout_s,
                    policy=self.policy,
                    rng=self._rng,
                )
            if record.status != "ok" or record.text is None:
                raise JudgeFailed(f"judge call failed: {record.error}", raws)
            raws.append(record.text)
            try:
                return parse(record.text), record.text, attempt + 1
            except ReplyError as exc:
                reason = str(exc)
            conversation = (
                *messages,
                Message(role="assistant", content=record.text),
                Message(role="user", content=correction(reason)),
            )
        raise JudgeFailed(
            f"unparseable judge reply after {self.parse_retries + 1} attempts: {reason}", raws
        )

    async def aclose(self) -> None:
        """Close the judge's backend (connection pool)."""
        await self.backend.aclose()
