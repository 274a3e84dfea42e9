"""Model backends: one :class:`Backend` protocol, many implementations."""

from medsafe.models.base import (
    Backend,
    BackendOptions,
    ChatRequest,
    ChatResponse,
    backends,
    create_backend,
    split_model_spec,
)

__all__ = [
    "Backend",
    "BackendOptions",
    "ChatRequest",
    "ChatResponse",
    "backends",
    "create_backend",
    "split_model_spec",
]
