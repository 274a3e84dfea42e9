"""Shared helpers for in-process model backends (``embedded``, ``hf``).

A model loaded in this process is not thread-safe, so :class:`SerialModel` loads it lazily
(on first use, in a worker thread) and runs every blocking call on it one at a time under a
lock, via :func:`asyncio.to_thread`, so the event loop stays free while the model works.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from importlib.util import find_spec
from typing import Generic, TypeVar

from medsafe.errors import BackendError
from medsafe.models.base import ChatRequest

M = TypeVar("M")
R = TypeVar("R")

DEFAULT_MAX_TOKENS = 512
"""Used when ``params.max_tokens`` is None, so a small model cannot ramble to its context end."""


class SerialModel(Generic[M]):
    """A lazily loaded model whose blocking calls run one at a time off the event loop."""

    def __init__(self, load: Callable[[], M]) -> None:
        self._load = load
        self._model: M | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._model is not None

    def call(self, fn: Callable[[M], R]) -> R:
        """Run ``fn(model)`` in this thread, loading the model first if needed (blocking)."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return fn(self._model)

    async def run(self, fn: Callable[[M], R]) -> R:
        """Run ``fn(model)`` in a worker thread, serialised with every other call."""
        return await asyncio.to_thread(self.call, fn)

    def unload(self) -> None:
        """Drop the model (waits for a running call); the next call loads it again."""
        with self._lock:
            self._model = None


def require_modules(modules: tuple[str, ...], extra: str) -> None:
    """Raise a non-retryable BackendError naming the extra to install if a module is missing.

    Uses :func:`importlib.util.find_spec` on top-level names, so nothing is imported.
    """
    missing = [name for name in modules if find_spec(name) is None]
    if missing:
        raise BackendError(
            f"missing package(s) {', '.join(missing)}: pip install 'medsafe[{extra}]'",
            retryable=False,
        )


def chat_messages(request: ChatRequest) -> list[dict[str, str]]:
    """The request as role/content dicts, with ``params.system_prompt`` first when given."""
    out: list[dict[str, str]] = []
    if request.params.system_prompt:
        out.append({"role": "system", "content": request.params.system_prompt})
    out.extend({"role": m.role, "content": m.content} for m in request.messages)
    return out
