"""The runner against a loopback mock server: retries, faults, timeouts, cache, resume."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from medsafe.errors import BackendError
from medsafe.models.base import BackendOptions, ChatRequest, ChatResponse
from medsafe.models.openai_compat import OpenAICompatBackend, parse_retry_after
from medsafe.runner import RetryPolicy, call_with_retries, generate
from medsafe.schema import Message, ModelParams
from medsafe.store import Store
from medsafe.testing.mock_openai import MockConfig, MockOpenAIServer, ThreadedMockServer
from tests.conftest import create_run, make_mcq, make_spec


class Flaky:
    """A scripted backend: fails with the given errors, then answers."""

    max_concurrency: int | None = None
    model_id = "flaky/x"

    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return ChatResponse(text="Answer: A")

    async def aclose(self) -> None:
        return None


REQ = ChatRequest(messages=(Message(role="user", content="hi"),), params=ModelParams())
FAST = RetryPolicy(retries=3, base_s=0.001, cap_s=0.002)


async def test_retryable_errors_are_retried_then_succeed() -> None:
    backend = Flaky([BackendError("503", retryable=True), BackendError("500", retryable=True)])
    record = await call_with_retries(
        backend, REQ, "h", timeout_s=1, policy=FAST, rng=random.Random(0)
    )
    assert record.status == "ok" and record.attempts == 3 and backend.calls == 3


async def test_non_retryable_error_fails_at_once_with_cause() -> None:
    backend = Flaky([BackendError("HTTP 400 bad request", retryable=False)])
    record = await call_with_retries(
        backend, REQ, "h", timeout_s=1, policy=FAST, rng=random.Random(0)
    )
    assert record.status == "failed" and backend.calls == 1
    assert record.error is not None and "HTTP 400 bad request" in record.error


async def test_retries_exhausted_and_unexpected_exceptions_fail_with_cause() -> None:
    backend = Flaky([BackendError("503", retryable=True)] * 10)
    record = await call_with_retries(
        backend, REQ, "h", timeout_s=1, policy=FAST, rng=random.Random(0)
    )
    assert record.status == "failed" and record.attempts == 4
    assert record.error is not None and "attempt 4 of 4" in record.error
    bug = Flaky([ZeroDivisionError("oops")])
    record = await call_with_retries(bug, REQ, "h", timeout_s=1, policy=FAST, rng=random.Random(0))
    assert record.status == "failed" and "ZeroDivisionError: oops" in (record.error or "")


def test_retry_after_is_honoured_with_bounded_jitter() -> None:
    policy = RetryPolicy(max_retry_after_s=10)
    rng = random.Random(1)
    for _ in range(50):
        wait = policy.delay(0, 2.0, rng)
        assert 2.0 <= wait <= 2.2
    assert policy.delay(0, 500.0, rng) <= 11.0
    assert all(0 <= policy.delay(3, None, rng) <= 4.0 for _ in range(50))
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


async def test_openai_backend_talks_to_mock_and_maps_errors() -> None:
    server = MockOpenAIServer(MockConfig(fail_429=1.0, retry_after="7"))
    await server.start()
    backend = OpenAICompatBackend("m", BackendOptions(base_url=server.base_url))
    try:
        with pytest.raises(BackendError) as info:
            await backend.complete(REQ)
        assert info.value.retryable and info.value.retry_after == 7.0
        assert info.value.status_code == 429
        server.config.fail_429 = 0.0
        answer = await backend.complete(REQ)
        assert answer.text.endswith(("A", "B", "C", "D"))
        assert answer.usage.prompt_tokens == 10 and answer.finish_reason == "stop"
    finally:
        await backend.aclose()
        await server.stop()


async def test_connection_refused_is_retryable() -> None:
    backend = OpenAICompatBackend("m", BackendOptions(base_url="http://127.0.0.1:9/v1"))
    try:
        with pytest.raises(BackendError) as info:
            await backend.complete(REQ)
        assert info.value.retryable
    finally:
        await backend.aclose()


def test_api_key_is_sent_but_never_stored(
    monkeypatch: pytest.MonkeyPatch, db: Path, mock_server: MockOpenAIServer
) -> None:
    from medsafe.models.base import create_backend

    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-123")
    spec = create_run(db, make_spec("k", "openai/mock", mock_server.base_url), [make_mcq(0)])
    backend = create_backend(spec.model, BackendOptions(base_url=mock_server.base_url))

    async def go() -> None:
        try:
            await generate(spec, db, backend)
        finally:
            await backend.aclose()

    asyncio.run(go())
    assert mock_server.state.authorization == {"Bearer sk-secret-123"}
    stored = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert b"sk-secret-123" not in stored
    assert b"sk-secret" not in spec.model_dump_json().encode()


def test_fault_injection_every_item_ends_ok_or_failed_with_cause(db: Path) -> None:
    config = MockConfig(fail_500=0.10, fail_429=0.05, retry_after="0.01", hang=0.02, seed=7)
    n = 300
    with ThreadedMockServer(config) as server:
        spec = make_spec(
            "faults", "openai/mock", server.base_url, concurrency=32, timeout_s=0.5, retries=2
        )
        spec = create_run(db, spec, [make_mcq(i) for i in range(n)])
        from medsafe.models.base import create_backend

        backend = create_backend(spec.model, BackendOptions(base_url=server.base_url))

        async def go() -> None:
            try:
                await generate(spec, db, backend)
            finally:
                await backend.aclose()

        asyncio.run(go())
    with Store(db) as store:
        counts = store.status_counts("faults")
        rows = store.connection.execute(
            "SELECT status, error FROM transcripts WHERE run_id='faults'"
        ).fetchall()
    assert counts["n"] == n and counts["pending"] == 0
    assert counts["ok"] + counts["failed"] == n
    assert len(rows) == n
    assert counts["ok"] > 0.9 * n  # retries recover most injected faults
    for status, error in rows:
        if status == "failed":
            assert error and ("HTTP" in error or "timeout" in error)
        else:
            assert error is None


def test_cache_means_a_second_run_asks_nothing(db: Path, mock_server: MockOpenAIServer) -> None:
    from medsafe.models.base import create_backend

    items = [make_mcq(i) for i in range(20)]

    def run(run_id: str) -> int:
        spec = create_run(db, make_spec(run_id, "openai/mock", mock_server.base_url), items)
        backend = create_backend(spec.model, BackendOptions(base_url=mock_server.base_url))

        async def go() -> int:
            try:
                return (await generate(spec, db, backend)).cached
            finally:
                await backend.aclose()

        return asyncio.run(go())

    assert run("first") == 0
    asked = mock_server.state.requests
    assert asked == 20
    assert run("second") == 20
    assert mock_server.state.requests == asked
