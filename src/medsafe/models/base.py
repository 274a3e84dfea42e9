"""The one seam between medsafe and models: the :class:`Backend` protocol.

A backend turns a :class:`ChatRequest` into a :class:`ChatResponse` or raises
:class:`~medsafe.errors.BackendError`. Retries, timeouts, concurrency and caching are the
runner's job, never the backend's, so every backend (HTTP, replay, local model, test mock)
behaves the same way under the runner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from medsafe.errors import ConfigError
from medsafe.registry import Registry
from medsafe.schema import Item, Message, ModelParams, Usage


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What the runner asks: the conversation so far and the generation parameters."""

    messages: tuple[Message, ...]
    params: ModelParams
    item: Item | None = None  # lets replay backends match answers to items
    response_format: dict[str, Any] | None = None
    """Structured-output request (OpenAI ``response_format``) for backends that support it."""


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """What a backend answers."""

    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None


@runtime_checkable
class Backend(Protocol):
    """A model behind one interface."""

    model_id: str
    """Stable identifier stored with every transcript (e.g. ``openai/gpt-4o-mini``)."""

    max_concurrency: int | None
    """A hard cap the backend needs (1 for an in-process model), or None for the runner's."""

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer one request or raise BackendError."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads or model memory."""
        ...


@dataclass(frozen=True)
class BackendOptions:
    """Options that reach every backend factory; the API key is read from the env, never stored."""

    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    extra: dict[str, str] = field(default_factory=dict)


BackendFactory = Callable[[str, BackendOptions], Backend]
backends: Registry[BackendFactory] = Registry("backend")


def split_model_spec(spec: str) -> tuple[str, str]:
    """``"openai/gpt-4o"`` -> ``("openai", "gpt-4o")``; the rest after the first ``/`` is kept."""
    kind, sep, rest = spec.partition("/")
    if not sep or not kind or not rest:
        raise ConfigError(
            f"model spec {spec!r} must look like KIND/NAME "
            f"(kinds: {', '.join(backends.names()) or 'none loaded'})"
        )
    return kind, rest


def create_backend(spec: str, options: BackendOptions | None = None) -> Backend:
    """Build the backend a model spec names (importing the built-in backends first).

    A plug-in backend (``@medsafe.backend`` or an entry point) may be named without ``/NAME``.
    """

    if "/" not in spec and spec in backends and not backends.is_builtin(spec):
        kind, rest = spec, ""
    else:
        kind, rest = split_model_spec(spec)
    return backends.get(kind)(rest, options or BackendOptions())


def _is_builtin_kind(spec: str) -> bool:

    return backends.is_builtin(spec.partition("/")[0])


def model_key(spec: str, backend: Backend) -> str:
    """The model name stored with a run and hashed into its request cache keys.

    A built-in backend's spec names its model exactly (``openai/gpt-4o``). A plug-in backend
    adds the ``model_id`` it declares (``echo@v2``), so that an edited plug-in (a new
    ``model_id``) never gets an older one's cached answers.
    """
    if _is_builtin_kind(spec):
        pinned = getattr(backend, "pinned_key", None)  # e.g. hf/PATH?adapter=A&sha256=DIGEST
        return pinned if isinstance(pinned, str) and pinned else spec
    return f"{spec}@{backend.model_id}"


def backend_key(backend: Backend) -> str:
    """:func:`model_key` of a backend object given without a spec (named after its ``name``)."""
    if _is_builtin_kind(backend.model_id):
        return backend.model_id
    name = getattr(backend, "name", None)
    return f"{name}@{backend.model_id}" if isinstance(name, str) and name else backend.model_id


def spec_of_key(key: str) -> str:
    """The model spec a stored :func:`model_key` was made from (``echo@v2`` -> ``echo``)."""
    if _is_builtin_kind(key):
        return key
    spec, sep, _model_id = key.rpartition("@")
    return spec if sep else key
