"""A stand-in for vLLM's offline API, for tests on machines without vLLM or a GPU.

It mimics the signatures of vLLM >= 0.10.2 (v1 engine) that medsafe uses
(``vllm/entrypoints/llm.py``, ``vllm/sampling_params.py``, ``vllm/outputs.py``,
``vllm/v1/engine/llm_engine.py``):
``LLM(model, *, tensor_parallel_size, dtype, seed, gpu_memory_utilization, **engine_args)``,
``LLM.get_tokenizer()``, ``LLM.generate(prompts, sampling_params, *, use_tqdm)``, the engine's
``add_request(request_id, prompt, params)`` / ``step()`` / ``has_unfinished_requests()`` /
``abort_request(ids)``, ``SamplingParams`` (validated as vLLM does), ``RequestOutputKind`` and
``RequestOutput`` / ``CompletionOutput``.

The "model" generates one token per running request per step (so a step is one batch), and
answers ``"<letter>. reply to a N-token prompt"`` (the letter from N), plus a word drawn with
the request's seed when sampling. Its tokenizer is byte-level with BOS=1, EOS=2, and takes its
chat template from ``tokenizer_config.json`` as Hugging Face tokenizers do.

Tests install it as ``vllm`` with :func:`install`; the benchmark's smoke test puts a one-line
``vllm/__init__.py`` re-exporting it on ``PYTHONPATH``.
"""

from __future__ import annotations

import enum
import json
import os
import random
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import jinja2

BOS, EOS, OFFSET = 1, 2, 3
STEP_S = 0.002
"""Time one engine step takes (a GPU forward pass), so that requests arriving meanwhile queue."""
WORDS = ("rest", "water", "doctor", "nurse", "clinic", "sleep", "walk", "tea")
ENV_NAMES = (
    "VLLM_NO_USAGE_STATS",
    "DO_NOT_TRACK",
    "HF_HUB_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY",
    "TRANSFORMERS_OFFLINE",
)


class RequestOutputKind(enum.Enum):
    CUMULATIVE = 0
    DELTA = 1
    FINAL_ONLY = 2


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    max_tokens: int | None = 16
    stop: str | list[str] | None = None
    skip_special_tokens: bool = True
    output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE

    def __post_init__(self) -> None:  # the checks of vLLM's SamplingParams._verify_args
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}.")
        if self.temperature < 0.0:
            raise ValueError(f"temperature must be non-negative, got {self.temperature}.")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}.")


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: Sequence[int]
    cumulative_logprob: float | None
    logprobs: Any
    finish_reason: str | None = None
    stop_reason: int | str | None = None


class RequestOutput:
    def __init__(
        self,
        request_id: str,
        prompt: str | None,
        prompt_token_ids: list[int] | None,
        prompt_logprobs: Any,
        outputs: list[CompletionOutput],
        finished: bool,
        **kwargs: Any,
    ) -> None:
        self.request_id = request_id
        self.prompt = prompt
        self.prompt_token_ids = prompt_token_ids
        self.prompt_logprobs = prompt_logprobs
        self.outputs = outputs
        self.finished = finished


class Tokenizer:
    """Byte-level: token ``b + 3`` for each UTF-8 byte; BOS 1, EOS 2."""

    bos_token_id = BOS
    eos_token_id = EOS

    def __init__(self, chat_template: str | None) -> None:
        self.chat_template = chat_template

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [b + OFFSET for b in text.encode("utf-8")]
        return [BOS, *ids] if add_special_tokens else ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        data = bytes(i - OFFSET for i in ids if i >= OFFSET)
        return data.decode("utf-8", errors="replace")  # specials never decode to text here

    def apply_chat_template(
        self,
        conversation: list[dict[str, str]],
        add_generation_prompt: bool = False,
        tokenize: bool = True,
        **kwargs: Any,
    ) -> str | list[int]:
        if not self.chat_template:
            raise ValueError("Cannot use chat template functions because tokenizer.chat_template")
        template = jinja2.Environment().from_string(self.chat_template)
        text = template.render(messages=conversation, add_generation_prompt=add_generation_prompt)
        return self.encode(text, add_special_tokens=False) if tokenize else text


@dataclass
class _Seq:
    request_id: str
    prompt_ids: list[int]
    params: SamplingParams
    plan: list[int]
    made: list[int] = field(default_factory=list)


@dataclass
class EngineStats:
    """What the engine saw, for tests to assert on."""

    steps: int = 0
    peak_batch: int = 0
    added: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    params: list[SamplingParams] = field(default_factory=list)
    prompts: list[list[int]] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)


class LLMEngine:
    def __init__(self, tokenizer: Tokenizer, max_model_len: int, step_s: float) -> None:
        self.tokenizer = tokenizer
        self.max_model_len = max_model_len
        self.step_s = step_s
        self.running: dict[str, _Seq] = {}
        self.stats = EngineStats()
        self.fail_next_step: str | None = None
        self.id_suffix: str | None = None
        """Newer vLLMs keep an internal id (the caller's plus a suffix) and return it."""
        self.outputs_use_internal_ids = False
        self.broken: str | None = None
        """An error ``has_unfinished_requests`` raises (an engine in a state nobody expected)."""
        self._internal: dict[str, str] = {}

    def add_request(
        self,
        request_id: str,
        prompt: dict[str, Any] | str,
        params: SamplingParams,
        arrival_time: float | None = None,
        **kwargs: Any,
    ) -> str | None:
        self.stats.threads.add(threading.current_thread().name)
        if isinstance(prompt, str):
            ids = self.tokenizer.encode(prompt)
        else:
            ids = list(prompt["prompt_token_ids"])
        if len(ids) > self.max_model_len:
            raise ValueError(
                f"The decoder prompt (length {len(ids)}) is longer than the maximum model "
                f"length of {self.max_model_len}. Make sure that `max_model_len` is no smaller "
                "than the number of text tokens."
            )
        if request_id + (self.id_suffix or "") in self.running:
            raise ValueError(f"Request id {request_id} already running.")
        self.stats.added.append(request_id)
        self.stats.params.append(params)
        self.stats.prompts.append(ids)
        internal = request_id + (self.id_suffix or "")
        self._internal[request_id] = internal
        reported = internal if self.outputs_use_internal_ids else request_id
        self.running[internal] = _Seq(reported, ids, params, self._plan(ids, params))
        return internal if self.id_suffix is not None else None

    def _plan(self, ids: list[int], params: SamplingParams) -> list[int]:
        reply = f"{'ABCD'[len(ids) % 4]}. reply to a {len(ids)}-token prompt"
        if params.temperature > 0:
            rng = random.Random(params.seed) if params.seed is not None else random.Random()
            reply += " " + rng.choice(WORDS)
        return [*self.tokenizer.encode(reply, add_special_tokens=False), EOS]

    def has_unfinished_requests(self) -> bool:
        if self.broken is not None:
            raise RuntimeError(self.broken)
        return bool(self.running)

    def get_num_unfinished_requests(self) -> int:
        return len(self.running)

    def abort_request(self, request_ids: str | list[str]) -> None:
        ids = [request_ids] if isinstance(request_ids, str) else list(request_ids)
        for rid in ids:
            if self.running.pop(self._internal.get(rid, rid), None) is not None:
                self.stats.aborted.append(rid)

    def step(self) -> list[RequestOutput]:
        self.stats.threads.add(threading.current_thread().name)
        if self.fail_next_step is not None:
            message, self.fail_next_step = self.fail_next_step, None
            raise RuntimeError(message)
        time.sleep(self.step_s)
        self.stats.steps += 1
        self.stats.peak_batch = max(self.stats.peak_batch, len(self.running))
        outputs: list[RequestOutput] = []
        for internal, seq in list(self.running.items()):
            seq.made.append(seq.plan[len(seq.made)])
            reason = None
            if seq.made[-1] == EOS:
                reason = "stop"
            elif seq.params.max_tokens is not None and len(seq.made) >= seq.params.max_tokens:
                reason = "length"
            final = seq.params.output_kind is RequestOutputKind.FINAL_ONLY
            if reason is None and final:
                continue
            completion = CompletionOutput(
                index=0,
                text=self.tokenizer.decode(seq.made, skip_special_tokens=True),
                token_ids=list(seq.made),
                cumulative_logprob=None,
                logprobs=None,
                finish_reason=reason,
            )
            outputs.append(
                RequestOutput(
                    seq.request_id, None, seq.prompt_ids, None, [completion], reason is not None
                )
            )
            if reason is not None:
                del self.running[internal]
        return outputs


ENGINE_ARGS = ("max_model_len", "max_num_seqs", "enforce_eager", "quantization", "tokenizer")


class LLM:
    """``vllm.LLM``: loads ``model`` (a directory with ``config.json``) or raises."""

    instances: ClassVar[list[LLM]] = []
    attempts: ClassVar[int] = 0
    """Constructions tried, including those that raised."""

    def __init__(
        self,
        model: str,
        *,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        seed: int | None = None,
        gpu_memory_utilization: float = 0.9,
        **kwargs: Any,
    ) -> None:
        LLM.attempts += 1
        unknown = sorted(set(kwargs) - set(ENGINE_ARGS))
        if unknown:
            raise TypeError(
                f"EngineArgs.__init__() got an unexpected keyword argument {unknown[0]!r}"
            )
        self.env = {name: os.environ.get(name) for name in ENV_NAMES}
        self.model = model
        self.kwargs = dict(
            kwargs,
            tensor_parallel_size=tensor_parallel_size,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
        )
        path = Path(model)
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        if "standin_load_error" in config:
            raise RuntimeError(config["standin_load_error"])
        tokenizer_config = path / "tokenizer_config.json"
        template = None
        if tokenizer_config.is_file():
            template = json.loads(tokenizer_config.read_text(encoding="utf-8")).get("chat_template")
        max_len = int(kwargs.get("max_model_len") or config.get("max_position_embeddings", 4096))
        step_s = float(config.get("standin_step_s", STEP_S))
        self.llm_engine = LLMEngine(Tokenizer(template), max_len, step_s)
        self.generate_calls = 0
        self._counter = 0
        LLM.instances.append(self)

    def get_tokenizer(self) -> Tokenizer:
        return self.llm_engine.tokenizer

    def generate(
        self,
        prompts: Any,
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        use_tqdm: bool = True,
        **kwargs: Any,
    ) -> list[RequestOutput]:
        self.generate_calls += 1
        batch = [prompts] if isinstance(prompts, str | dict) else list(prompts)
        params = sampling_params or SamplingParams()
        for i, prompt in enumerate(batch):
            sp = params[i] if isinstance(params, Sequence) else params
            sp.output_kind = RequestOutputKind.FINAL_ONLY
            self.llm_engine.add_request(str(self._counter), prompt, sp)
            self._counter += 1
        outputs: list[RequestOutput] = []
        while self.llm_engine.has_unfinished_requests():
            outputs.extend(o for o in self.llm_engine.step() if o.finished)
        return sorted(outputs, key=lambda o: int(o.request_id))


def install(monkeypatch: Any) -> ModuleType:
    """Put this module in ``sys.modules`` as ``vllm`` and ``vllm.sampling_params``."""
    module = sys.modules[__name__]
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", module)
    LLM.instances.clear()
    LLM.attempts = 0
    return module


def write_checkpoint(path: Path, chat_template: str | None = None, **config: Any) -> Path:
    """A checkpoint directory the stand-in loads: ``config.json`` and ``tokenizer_config.json``."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(
        json.dumps({"architectures": ["StandInForCausalLM"], **config}), encoding="utf-8"
    )
    if chat_template is not None:
        (path / "tokenizer_config.json").write_text(
            json.dumps({"chat_template": chat_template}), encoding="utf-8"
        )
    return path
