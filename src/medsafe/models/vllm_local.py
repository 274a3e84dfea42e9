"""``vllm/PATH``: a local checkpoint served in-process by vLLM's offline engine, on GPUs.

Install with ``pip install 'medsafe[vllm]'`` on a machine with a GPU (vLLM >= 0.10.2, the first
whose engine may be built off the main thread; it pins its own CUDA torch, so keep it apart from
the ``hf`` extra). ``PATH`` must be a local checkpoint directory (``config.json``); nothing is
downloaded: ``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE`` default to 1, and vLLM's usage
statistics and Hugging Face telemetry are switched off (:func:`silence_phone_home`) before vLLM
is imported.

**Continuous batching.** One engine thread owns the ``vllm.LLM`` and drives its engine step
by step, as ``LLM.generate`` does internally (``llm_engine.add_request`` / ``step``): before
every step it adds every request that arrived meanwhile, and it hands each answer back as soon
as it is finished. So the runner's concurrent calls (``--concurrency``) share the GPU's batch,
and a request never waits for the slowest answer of an earlier group. A call the runner gives
up on (timeout) is aborted in the engine.

Options follow the path after ``?`` (``vllm/PATH?dtype=bfloat16&max_model_len=8192``):
:data:`OPTIONS`. The model key stored with a run and hashed into its requests is the spec with
its options sorted (``vllm/PATH?dtype=bfloat16&max_model_len=8192``), so a run resumes with the
same engine settings; like ``hf/PATH``, the path is taken as written.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import os
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from medsafe.errors import BackendError, ConfigError
from medsafe.models._threaded import DEFAULT_MAX_TOKENS, chat_messages
from medsafe.models.base import BackendOptions, ChatRequest, ChatResponse, backends
from medsafe.models.hf_local import build_prompt
from medsafe.schema import ModelParams, Usage

INSTALL_HINT = "pip install 'medsafe[vllm]' on a machine with a GPU"

PHONE_HOME_OFF = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
"""Always set before vLLM is imported: no usage statistics, no telemetry."""
OFFLINE_DEFAULTS = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
"""Set unless the user already set them (explicitly going online is the user's choice)."""

LOAD_TIMEOUT_HINT_S = 600.0
"""Below this per-request timeout the backend's notice warns that loading may exceed it."""

DTYPES = ("auto", "float16", "bfloat16", "float32", "half", "float")


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be an integer >= 1")
    return number


def _fraction(value: str) -> float:
    number = float(value)
    if not 0.0 < number <= 1.0:
        raise ValueError("must be a number in (0, 1]")
    return number


def _dtype(value: str) -> str:
    if value not in DTYPES:
        raise ValueError(f"must be one of {', '.join(DTYPES)}")
    return value


def _flag(value: str) -> bool:
    if value not in ("true", "false", "1", "0"):
        raise ValueError("must be true or false")
    return value in ("true", "1")


OPTIONS: dict[str, Callable[[str], Any]] = {
    "tensor_parallel_size": _positive_int,  # GPUs the model is split over
    "gpu_memory_utilization": _fraction,  # share of GPU memory vLLM may take (default 0.9)
    "max_model_len": _positive_int,  # context length (default: the model's)
    "max_num_seqs": _positive_int,  # sequences per engine step (vLLM's default otherwise)
    "dtype": _dtype,
    "enforce_eager": _flag,  # no CUDA graphs (faster start, slower steps)
}
"""``?`` options passed on to ``vllm.LLM`` as keyword arguments, with their validators."""


def silence_phone_home() -> None:
    """Turn off vLLM's and Hugging Face's phone-home in ``os.environ`` (call before import)."""
    os.environ.update(PHONE_HOME_OFF)
    for name, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(name, value)


def parse_spec(name: str) -> tuple[str, dict[str, Any]]:
    """``PATH?k=v&...`` -> ``(PATH, {k: typed v})``; a ConfigError names a bad field."""
    base, sep, query = name.partition("?")
    options: dict[str, Any] = {}
    for part in filter(None, query.split("&") if sep else []):
        key, eq, value = part.partition("=")
        if key not in OPTIONS:
            raise ConfigError(
                f"vllm/{name}: unknown option {key!r} (supported: {', '.join(OPTIONS)})"
            )
        if not eq or not value:
            raise ConfigError(f"vllm/{name}: option {key!r} needs a value ({key}=VALUE)")
        try:
            options[key] = OPTIONS[key](value)
        except ValueError as exc:
            raise ConfigError(f"vllm/{name}: option {key}={value!r}: {exc}") from None
    return base, options


def canonical_spec(base: str, options: dict[str, Any]) -> str:
    """The model key: ``vllm/PATH`` with its options sorted by name."""
    if not options:
        return f"vllm/{base}"
    query = "&".join(f"{k}={_text(v)}" for k, v in sorted(options.items()))
    return f"vllm/{base}?{query}"


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def sampling_kwargs(params: ModelParams) -> dict[str, Any]:
    """``vllm.SamplingParams`` keyword arguments for a run's parameters.

    Temperature 0 or None decodes greedily (as ``hf/PATH``; vLLM's own default would be 1);
    ``max_tokens`` None means 512; ``top_p`` and ``seed`` are passed on when set; one answer.
    """
    kwargs: dict[str, Any] = {
        "n": 1,
        "temperature": params.temperature or 0.0,
        "max_tokens": params.max_tokens or DEFAULT_MAX_TOKENS,
    }
    if params.top_p is not None:
        kwargs["top_p"] = params.top_p
    if params.seed is not None:
        kwargs["seed"] = params.seed
    return kwargs


@dataclass
class _Job:
    request_id: str
    messages: list[dict[str, str]]
    sampling: dict[str, Any]
    future: Future[Any]
    engine_id: str = ""
    """The id the engine's outputs carry: ours, or one a newer vLLM's add_request returns."""


_STOP = None


class Engine:
    """A ``vllm.LLM`` owned by one thread that batches every queued request into each step.

    The model loads on the first request (in the engine thread); a load failure is kept and
    given to every later request until :meth:`close`, which stops the thread and drops the
    model; a later request loads it again.
    """

    def __init__(self, model_id: str, path: Path, options: dict[str, Any]) -> None:
        self.model_id = model_id
        self.path = path
        self.options = options
        self.users = 0
        self._inbox: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._aborts: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ids = itertools.count()
        self._load_error: BackendError | None = None

    def submit(self, messages: list[dict[str, str]], sampling: dict[str, Any]) -> _Job:
        """Queue one request; its future gets the finished ``RequestOutput`` or an error."""
        job = _Job(str(next(self._ids)), messages, sampling, Future())
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name=f"medsafe-vllm:{self.path.name}", daemon=True
                )
                self._thread.start()
            self._inbox.put(job)
        return job

    def abort(self, request_id: str) -> None:
        """Drop a request the caller no longer waits for (it is aborted in the engine)."""
        self._aborts.put(request_id)

    def close(self) -> None:
        """Stop the engine thread (failing what is still queued) and free the model."""
        with self._lock:
            if self._thread is None:
                return
            self._inbox.put(_STOP)
            self._thread.join()
            self._thread = None
            self._load_error = None  # reopened, it tries loading again

    def _load(self) -> _Loaded:
        if self._load_error is not None:
            raise self._load_error
        silence_phone_home()
        try:
            vllm = importlib.import_module("vllm")
            llm = vllm.LLM(model=str(self.path), **self.options)
            tokenizer = llm.get_tokenizer()
        except ImportError as exc:
            self._load_error = BackendError(
                f"cannot import vllm ({exc}): {INSTALL_HINT}", retryable=False
            )
            raise self._load_error from exc
        except Exception as exc:  # CUDA, config and memory errors of many kinds
            self._load_error = BackendError(
                f"cannot load {self.model_id}: {type(exc).__name__}: {exc}", retryable=False
            )
            raise self._load_error from exc
        return _Loaded(llm, tokenizer, _final_only(vllm), vllm.SamplingParams)

    def _serve(self) -> None:
        """The engine thread; if its loop ever breaks, it fails every request until closed."""
        running: dict[str, _Job] = {}
        try:
            self._loop(running)
        except Exception as exc:  # a bug or an unexpected vLLM: fail requests, never hang them
            error = _failure(self.model_id, exc, "engine thread failed")
            for job in running.values():
                if not job.future.done():
                    job.future.set_exception(error)
            while (queued := self._inbox.get()) is not None:
                if queued.future.set_running_or_notify_cancel():
                    queued.future.set_exception(error)

    def _loop(self, running: dict[str, _Job]) -> None:
        """Add what is queued, step, hand out what finished; repeat until the stop marker."""
        loaded: _Loaded | None = None
        aliases: dict[str, str] = {}  # engine id -> ours, where a newer vLLM returns another
        while True:
            jobs = self._drain(block=not running)
            stopping = _STOP in jobs
            for job in jobs:
                if job is None or not job.future.set_running_or_notify_cancel():
                    continue  # the stop marker, or a call given up before it was added
                if stopping:
                    job.future.set_exception(BackendError(f"{self.model_id}: engine closed"))
                    continue
                try:
                    loaded = loaded or self._load()
                    job.engine_id = loaded.add(job)
                except BackendError as exc:
                    job.future.set_exception(exc)
                except Exception as exc:  # vLLM refuses a request (e.g. prompt too long)
                    job.future.set_exception(_failure(self.model_id, exc))
                else:
                    running[job.request_id] = job
                    if job.engine_id != job.request_id:
                        aliases[job.engine_id] = job.request_id
            if loaded is not None:
                self._abort_given_up(loaded, running, everything=stopping)
            if stopping:
                return  # ``loaded`` goes out of scope: the model is freed
            if loaded is None or not running:
                aliases.clear()
                continue
            if not loaded.llm.llm_engine.has_unfinished_requests():  # never step an idle engine
                for job in running.values():  # (it would wait forever for an output)
                    job.future.set_exception(
                        BackendError(f"{self.model_id}: the engine finished without an answer")
                    )
                running.clear()
                continue
            try:
                outputs = loaded.llm.llm_engine.step()
            except Exception as exc:  # the engine failed: every request in it fails
                for job in running.values():
                    job.future.set_exception(_failure(self.model_id, exc, "engine step failed"))
                self._abort_given_up(loaded, running, everything=True)
                continue
            for output in outputs:
                if getattr(output, "finished", False):
                    rid = str(output.request_id)
                    done = running.pop(aliases.pop(rid, rid), None)
                    if done is not None:
                        aliases.pop(done.engine_id, None)
                        done.future.set_result(output)

    def _drain(self, block: bool) -> list[_Job | None]:
        jobs: list[_Job | None] = [self._inbox.get()] if block else []
        while True:
            try:
                jobs.append(self._inbox.get_nowait())
            except queue.Empty:
                return jobs

    def _abort_given_up(self, loaded: _Loaded, running: dict[str, _Job], everything: bool) -> None:
        ids = list(running) if everything else []
        while True:
            try:
                ids.append(self._aborts.get_nowait())
            except queue.Empty:
                break
        ids = [rid for rid in dict.fromkeys(ids) if rid in running]
        if ids:
            for rid in ids:
                job = running.pop(rid)
                if not job.future.done():
                    job.future.set_exception(BackendError(f"{self.model_id}: aborted"))
            # an engine that failed may refuse to abort; there is nothing to free then
            with contextlib.suppress(Exception):
                loaded.llm.llm_engine.abort_request(ids)


@dataclass(frozen=True)
class _Loaded:
    """The loaded engine, its tokenizer and how to build sampling parameters."""

    llm: Any
    tokenizer: Any
    output_kind: Any
    sampling_params: Any

    def add(self, job: _Job) -> str:
        """Apply the chat template, tokenize and add the request to the engine; return the id
        its outputs will carry (newer vLLMs return one from ``add_request``)."""
        text = build_prompt(self.tokenizer, job.messages)
        templated = bool(getattr(self.tokenizer, "chat_template", None))
        ids = self.tokenizer.encode(text, add_special_tokens=not templated)
        extra = {"output_kind": self.output_kind} if self.output_kind is not None else {}
        params = self.sampling_params(**job.sampling, **extra)
        prompt = {"prompt_token_ids": list(ids)}
        engine_id = self.llm.llm_engine.add_request(job.request_id, prompt, params)
        return engine_id if isinstance(engine_id, str) else job.request_id


def _final_only(vllm: Any) -> Any:
    """``RequestOutputKind.FINAL_ONLY`` (outputs only when finished) where vLLM has it."""
    try:
        kinds = importlib.import_module("vllm.sampling_params").RequestOutputKind
    except (ImportError, AttributeError):
        return None
    return getattr(kinds, "FINAL_ONLY", None)


def _failure(model_id: str, exc: BaseException, what: str = "") -> BackendError:
    prefix = f"{model_id}: {what}: " if what else f"{model_id}: "
    return BackendError(f"{prefix}{type(exc).__name__}: {exc}", retryable=False)


def _response(model_id: str, output: Any) -> ChatResponse:
    """Map a finished ``RequestOutput`` (first completion) to a ChatResponse."""
    try:
        completion = output.outputs[0]
        text, token_ids = str(completion.text), list(completion.token_ids)
    except (AttributeError, IndexError, TypeError) as exc:
        raise BackendError(f"{model_id}: malformed vLLM output: {exc!r}", retryable=False) from exc
    reason = completion.finish_reason
    if reason == "abort":
        raise BackendError(f"{model_id}: the engine aborted the request", retryable=True)
    return ChatResponse(
        text=text,
        usage=Usage(
            prompt_tokens=len(output.prompt_token_ids or ()), completion_tokens=len(token_ids)
        ),
        finish_reason=None if reason is None else str(reason),
    )


class VLLMBackend:
    """A vLLM engine behind the :class:`~medsafe.models.base.Backend` protocol."""

    notice: str | None = None

    def __init__(self, model_id: str, engine: Engine) -> None:
        self.model_id = model_id
        self.pinned_key: str | None = model_id
        """The model key runs store and hash: the spec with its options sorted."""
        self.max_concurrency: int | None = None  # the engine batches whatever is in flight
        self.engine = engine
        self._open = False
        self._acquire()

    def _acquire(self) -> None:
        if not self._open:
            self.engine.users += 1
            self._open = True

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer one request; it joins the engine's running batch at its next step."""
        if request.item is not None and request.item.attachments:
            raise BackendError(
                f"{self.model_id}: the item has attachments, which vllm/PATH does not send (it "
                "is text-only); serve the model with `vllm serve` and use openai/NAME --base-url",
                retryable=False,
            )
        self._acquire()
        job = self.engine.submit(chat_messages(request), sampling_kwargs(request.params))
        try:
            output = await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            self.engine.abort(job.request_id)
            raise
        return _response(self.model_id, output)

    async def aclose(self) -> None:
        """Release the engine; the last backend using it stops it and frees GPU memory."""
        if not self._open:
            return
        self._open = False
        self.engine.users -= 1
        if self.engine.users == 0:
            await asyncio.to_thread(self.engine.close)


_ENGINES: dict[str, Engine] = {}
"""One engine per model key in this process, shared by every backend that names it (a run's
target and its judge on the same checkpoint do not load it twice)."""


@backends.register("vllm")
def vllm_backend(name: str, options: BackendOptions) -> VLLMBackend:
    """Factory for ``vllm/PATH[?option=value&...]``: PATH must be a local checkpoint directory
    with a ``config.json``; options are :data:`OPTIONS`."""
    base, engine_options = parse_spec(name)
    path = Path(base).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(f"vllm/{name}: {path} is not a checkpoint directory (no config.json)")
    if "vllm" not in sys.modules and find_spec("vllm") is None:
        raise BackendError(f"missing package vllm: {INSTALL_HINT}", retryable=False)
    key = canonical_spec(base, engine_options)
    engine = _ENGINES.get(key)
    if engine is None:
        engine = _ENGINES[key] = Engine(key, path, engine_options)
    backend = VLLMBackend(key, engine)
    if options.timeout_s < LOAD_TIMEOUT_HINT_S:
        backend.notice = (
            f"{key} loads its engine on the first request, which waits for it (minutes for a "
            f"large model): with --timeout {options.timeout_s:g} the first requests may time "
            "out and be retried; pass --timeout 900"
        )
    return backend
