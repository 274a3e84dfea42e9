"""One model call with a timeout, retries, exponential backoff with full jitter, Retry-After."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from medsafe.errors import BackendError, ExecutorError
from medsafe.models.base import Backend, ChatRequest
from medsafe.redact import redact
from medsafe.schema import CallRecord


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed call is tried again.

    Delay before retry ``k`` (0-based) is uniform in ``[0, min(cap_s, base_s * 2**k)]``
    ("full jitter"), unless the server sent ``Retry-After``, which is honoured (up to
    ``max_retry_after_s``) plus up to 10% jitter so that waiting clients do not return together.
    """

    retries: int = 3
    base_s: float = 0.5
    cap_s: float = 30.0
    max_retry_after_s: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after is not None:
            wait = min(max(retry_after, 0.0), self.max_retry_after_s)
            return wait + rng.uniform(0.0, 0.1 * wait)
        return rng.uniform(0.0, min(self.cap_s, self.base_s * (2**attempt)))


async def call_with_retries(
    backend: Backend,
    request: ChatRequest,
    request_hash: str,
    *,
    timeout_s: float,
    policy: RetryPolicy,
    rng: random.Random,
) -> CallRecord:
    """Ask ``backend`` until it answers or the policy gives up; never raises for model errors.

    The returned record is ``ok`` with the answer, or ``failed`` with the last cause and the
    number of attempts. Only retryable failures (timeouts, 429/5xx, connection errors) are retried.
    """
    attempts = 0
    error = "no attempt made"
    while True:
        attempts += 1
        started = time.perf_counter()
        retry_after: float | None = None
        try:
            async with asyncio.timeout(timeout_s):
                answer = await backend.complete(request)
        except TimeoutError:
            error, retryable = f"timeout after {timeout_s:g}s", True
        except BackendError as exc:
            error, retryable, retry_after = redact(str(exc)), exc.retryable, exc.retry_after
        except ExecutorError:  # no worker left to ask: the run stops, the item stays pending
            raise
        except Exception as exc:  # a backend bug must fail the item with its cause, not the run
            error, retryable = redact(f"{type(exc).__name__}: {exc}"), False
        else:
            return CallRecord(
                request_hash=request_hash,
                status="ok",
                text=answer.text,
                latency_s=time.perf_counter() - started,
                attempts=attempts,
                usage=answer.usage,
                finish_reason=answer.finish_reason,
            )
        if not retryable or attempts > policy.retries:
            # "attempt k of n" only where a retry was possible: a final, non-retryable cause
            # (a replay file with no answer, an HTTP 400) is reported as it is
            total = policy.retries + 1
            tried = f" (attempt {attempts} of {total})" if retryable or attempts > 1 else ""
            return CallRecord(
                request_hash=request_hash,
                status="failed",
                error=f"{error}{tried}",
                latency_s=time.perf_counter() - started,
                attempts=attempts,
            )
        await asyncio.sleep(policy.delay(attempts - 1, retry_after, rng))
