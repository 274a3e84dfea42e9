"""The judge-call client: one judge model, bounded retries for transport *and* parse failures.

Transport failures (timeouts, 429/5xx, connection errors) are retried by
:func:`medsafe.models.retry.call_with_retries`. A reply that cannot be parsed is retried up to
``parse_retries`` more times, each time showing the judge its own reply and why it was rejected.
When every attempt fails, :class:`JudgeFailed` carries the cause and every raw reply, so that
the scorer stores a *failed* score with them: a failure is never defaulted to a verdict.

With a :class:`ReplyCache` (the scoring pass gives one backed by the store), every successful
reply is kept under its request hash (:func:`judge_request_hash`) and committed before it is
used, and a request already answered is never sent again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

from medsafe.judges.parse import ReplyError
from medsafe.models.base import Backend, ChatRequest, model_key
from medsafe.models.config import NamedModel, create_named_backend
from medsafe.models.retry import RetryPolicy, call_with_retries
from medsafe.schema import CallRecord, Message, ModelParams, request_hash

T = TypeVar("T")
JUDGE_DEFAULTS = ModelParams(temperature=0.0, max_tokens=1024)
"""Judge parameters unless the named model sets its own (deterministic, room for a reason)."""
RAW_CHARS = 4000


class JudgeFailed(Exception):
    """A judge gave no usable verdict: ``cause``, every raw reply it sent, and the request
    hashes of the calls made for it."""

    def __init__(self, cause: str, raw_replies: list[str]) -> None:
        super().__init__(cause)
        self.cause = cause
        self.raw_replies = [r[:RAW_CHARS] for r in raw_replies]
        self.request_hashes: list[str] = []


ASKED: ContextVar[list[str] | None] = ContextVar("medsafe_judge_asked", default=None)
"""While set (by the judged scorer, per unit), every judge request hash is appended to it, so
that a score records the cached replies it rests on (``medsafe delete`` purges them)."""


class ReplyCache(Protocol):
    """Where a judge's successful replies are kept, by request hash."""

    def lookup(self, key: str) -> str | None:
        """The reply stored for exactly this request, or None."""
        ...

    async def keep(self, key: str, model: str, record: CallRecord) -> None:
        """Store a successful reply; returns once it is durable."""
        ...


def judge_request_hash(
    model: str,
    messages: tuple[Message, ...],
    params: ModelParams,
    response_format: dict[str, Any] | None,
) -> str:
    """The cache key of a judge call: :func:`~medsafe.schema.request_hash` of the model, every
    message and every parameter, plus the ``response_format`` when one is sent."""
    key = request_hash(model, messages, params)
    if response_format is None:
        return key
    blob = json.dumps({"request": key, "response_format": response_format}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


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
    """Asks one judge model; at most ``concurrency`` of its calls are in flight.

    ``cache`` (set by the scoring pass) answers requests already asked; with ``planned`` set,
    the client asks nothing and collects the keys of the calls it would make instead.
    """

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
        self.model = model_key(named.model, self.backend)
        """The model name hashed into the cache keys of this judge's calls."""
        self.cache: ReplyCache | None = None
        self.planned: set[str] | None = None

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
        """``(parsed, raw reply, attempts)``; raises :class:`JudgeFailed` when nothing parses.

        Each attempt's reply comes from the cache when this exact request was answered before.
        """
        raws: list[str] = []
        conversation = messages
        fmt = self.response_format(schema)
        for attempt in range(self.parse_retries + 1):
            text = await self._reply(conversation, fmt, raws)
            raws.append(text)
            try:
                return parse(text), text, attempt + 1
            except ReplyError as exc:
                reason = str(exc)
            conversation = (
                *messages,
                Message(role="assistant", content=text),
                Message(role="user", content=correction(reason)),
            )
        raise JudgeFailed(
            f"unparseable judge reply after {self.parse_retries + 1} attempts: {reason}", raws
        )

    async def _reply(
        self, conversation: tuple[Message, ...], fmt: dict[str, Any] | None, raws: list[str]
    ) -> str:
        """The reply to one request: cached, or asked (and kept before it is returned)."""
        key = judge_request_hash(self.model, conversation, self.params, fmt)
        asked = ASKED.get()
        if asked is not None:
            asked.append(key)
        cached = self.cache.lookup(key) if self.cache is not None else None
        if cached is not None:
            return cached
        if self.planned is not None:
            self.planned.add(key)
            raise JudgeFailed("not asked: counting the judge calls a pass would make", raws)
        request = ChatRequest(messages=conversation, params=self.params, response_format=fmt)
        async with self._slot():  # held until the reply is durable: a kill repeats only these
            record = await call_with_retries(
                self.backend,
                request,
                key,
                timeout_s=self.timeout_s,
                policy=self.policy,
                rng=self._rng,
            )
            if record.status != "ok" or record.text is None:
                raise JudgeFailed(f"judge call failed: {record.error}", raws)
            if self.cache is not None:
                await self.cache.keep(key, self.model, record)
        return record.text

    async def aclose(self) -> None:
        """Close the judge's backend (connection pool)."""
        await self.backend.aclose()
