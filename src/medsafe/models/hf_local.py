"""``hf/PATH``: a local transformers checkpoint directory run in-process on CPU.

Install with ``pip install 'medsafe[hf]'``. Files are only ever read from ``PATH``
(``local_files_only=True``): this backend never downloads anything. The prompt is built with the
tokenizer's chat template when it has one, else as ``role: content`` lines ending in
``assistant:``. Temperature 0 or None decodes greedily; otherwise it samples, seeded by
``params.seed`` when given. The model is loaded on first use and runs in a worker thread;
concurrent greedy requests are answered together in left-padded batches of up to
``?batch=N`` (default 8; ``max_concurrency`` is N; :mod:`medsafe.models.hf_batch`).

``hf/PATH?adapter=ADAPTER`` applies a peft (LoRA) adapter directory on top (``pip install
'medsafe[train]'``, as ``medsafe align train`` writes it). The model key stored with the run and
hashed into every request becomes ``hf/PATH?adapter=ADAPTER&sha256=DIGEST`` (the digest of the
adapter's files), so a run with another or a retrained adapter never replays cached answers; a
stored key whose digest no longer matches the adapter's files is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsafe.errors import BackendError, ConfigError
from medsafe.models._threaded import DEFAULT_MAX_TOKENS, SerialModel, chat_messages, require_modules
from medsafe.models.base import BackendOptions, ChatRequest, ChatResponse, backends
from medsafe.models.hf_batch import RequestBatcher, generate_batch
from medsafe.models.hf_vision import generate_vision, is_vision_checkpoint, load_vision
from medsafe.schema import Usage

REQUIRED = ("torch", "transformers")
DEFAULT_BATCH = 8
"""Requests answered together by default (``?batch=N``)."""


@dataclass(frozen=True)
class LoadedModel:
    """A tokenizer and a causal LM in eval mode."""

    tokenizer: Any
    model: Any
    processor: Any = None
    """An image-text-to-text checkpoint's processor (:mod:`medsafe.models.hf_vision`)."""


def adapter_digest(adapter: Path) -> str:
    """SHA-256 of an adapter directory's ``adapter_*`` files (names and bytes, sorted)."""
    files = sorted(p for p in adapter.glob("adapter_*") if p.is_file())
    if not any(p.name == "adapter_config.json" for p in files):
        raise ConfigError(f"{adapter}: not a peft adapter directory (no adapter_config.json)")
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _with_adapter(model: Any, adapter: Path) -> Any:
    require_modules(("peft",), "train")
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter, is_trainable=False).merge_and_unload()


def load_checkpoint(path: Path, adapter: Path | None = None) -> LoadedModel:
    """Load tokenizer and model from ``path`` (local files only, CPU), with ``adapter`` merged."""
    require_modules(REQUIRED, "hf")
    if adapter is None and is_vision_checkpoint(path):
        try:
            processor, vision_model = load_vision(path)
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
            raise BackendError(f"cannot load checkpoint {path}: {exc}", retryable=False) from exc
        return LoadedModel(processor.tokenizer, vision_model, processor)
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model: Any = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        if adapter is not None:
            model = _with_adapter(model, adapter)
    except ImportError as exc:
        raise BackendError(
            f"cannot import transformers ({exc}): pip install 'medsafe[hf]'", retryable=False
        ) from exc
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise BackendError(f"cannot load checkpoint {path}: {exc}", retryable=False) from exc
    model.eval()
    return LoadedModel(tokenizer=tokenizer, model=model)


def build_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """Chat-template text when the tokenizer has a template, else ``role: content`` lines."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return str(text)
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join([*lines, "assistant:"])


def _eos_ids(loaded: LoadedModel) -> set[int]:
    eos = loaded.model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
    if loaded.tokenizer.eos_token_id is not None:
        ids.add(int(loaded.tokenizer.eos_token_id))
    return ids


def generate(loaded: LoadedModel, request: ChatRequest) -> ChatResponse:
    """One blocking generation (call it through :class:`SerialModel`, which holds the lock)."""
    import torch

    if loaded.processor is not None:
        return generate_vision(loaded.processor, loaded.model, request)
    tokenizer, model, params = loaded.tokenizer, loaded.model, request.params
    messages = chat_messages(request)
    templated = bool(getattr(tokenizer, "chat_template", None))
    encoded = tokenizer(
        build_prompt(tokenizer, messages), return_tensors="pt", add_special_tokens=not templated
    )
    max_new = params.max_tokens or DEFAULT_MAX_TOKENS
    kwargs: dict[str, Any] = {"max_new_tokens": max_new}
    if params.temperature:
        kwargs.update(do_sample=True, temperature=params.temperature)
        if params.top_p is not None:
            kwargs["top_p"] = params.top_p
        if params.seed is not None:
            torch.manual_seed(params.seed)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        output = model.generate(**encoded, pad_token_id=pad, **kwargs)
    prompt_len = int(encoded["input_ids"].shape[1])
    new_ids = [int(t) for t in output[0][prompt_len:]]
    stopped = bool(new_ids) and new_ids[-1] in _eos_ids(loaded)
    return ChatResponse(
        text=tokenizer.decode(new_ids, skip_special_tokens=True),
        usage=Usage(prompt_tokens=prompt_len, completion_tokens=len(new_ids)),
        finish_reason="stop" if stopped or len(new_ids) < max_new else "length",
    )


class HFLocalBackend:
    """A local transformers checkpoint behind the :class:`~medsafe.models.base.Backend` protocol."""

    notice: str | None = None

    def __init__(
        self, model_id: str, path: Path, adapter: Path | None = None, *, batch: int = DEFAULT_BATCH
    ) -> None:
        self.model_id = model_id
        self.max_concurrency: int | None = batch
        self.path = path
        self.adapter = adapter
        self.pinned_key: str | None = model_id if adapter is not None else None
        """The model key runs store and hash (with the adapter's digest); None: the spec."""
        self._model: SerialModel[LoadedModel] = SerialModel(lambda: load_checkpoint(path, adapter))
        self.batcher = RequestBatcher(self._model, batch, generate, _generate_many)

    @property
    def loaded(self) -> bool:
        """Whether the checkpoint is in memory (it loads on the first call)."""
        return self._model.loaded

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer one request; generation errors become non-retryable BackendErrors."""
        try:
            return await self.batcher.submit(request)
        except BackendError:
            raise
        except Exception as exc:  # torch/transformers raise many kinds
            raise BackendError(f"{self.model_id}: {exc}", retryable=False) from exc

    async def aclose(self) -> None:
        """Free the model's memory (it is reloaded if the backend is used again)."""
        self._model.unload()


def _generate_many(loaded: LoadedModel, requests: list[ChatRequest]) -> list[ChatResponse]:
    if loaded.processor is not None:  # image-text checkpoints: one at a time
        return [generate(loaded, r) for r in requests]
    return generate_batch(loaded, requests, build_prompt)


@backends.register("hf")
def hf_backend(name: str, options: BackendOptions) -> HFLocalBackend:
    """Factory for ``hf/PATH[?adapter=DIR[&sha256=DIGEST]]``: PATH must be a checkpoint
    directory with a ``config.json``; DIR a peft adapter directory (also the ``adapter`` option)."""
    base, query = _split_query(name)
    path = Path(base).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(f"hf/{name}: {path} is not a checkpoint directory (no config.json)")
    require_modules(REQUIRED, "hf")
    batch = _batch_size(name, query.get("batch") or options.extra.get("batch"))
    adapter_text = query.get("adapter") or options.extra.get("adapter")
    if not adapter_text:
        backend = HFLocalBackend(f"hf/{base}", path, batch=batch)
        if "batch" in query:
            backend.pinned_key = f"hf/{base}"  # the batch size does not change what is asked
        return backend
    adapter = Path(adapter_text).expanduser()
    if not adapter.is_dir():
        raise ConfigError(f"hf/{name}: adapter {adapter} is not a directory")
    digest = adapter_digest(adapter)
    if query.get("sha256") not in (None, digest):
        raise ConfigError(
            f"hf/{name}: adapter {adapter} changed since this key was stored "
            f"(sha256 {digest[:12]}..., not {query['sha256'][:12]}...)"
        )
    model_id = f"hf/{base}?adapter={adapter_text}&sha256={digest}"
    return HFLocalBackend(model_id, path, adapter, batch=batch)


def _batch_size(name: str, text: object) -> int:
    if text is None:
        return DEFAULT_BATCH
    try:
        size = int(str(text))
    except ValueError:
        size = 0
    if not 1 <= size <= 256:
        raise ConfigError(f"hf/{name}: batch must be a whole number from 1 to 256, not {text!r}")
    return size


def _split_query(name: str) -> tuple[str, dict[str, str]]:
    """``PATH?adapter=A&sha256=H`` -> ``(PATH, {adapter: A, sha256: H})`` (unknown keys refused)."""
    base, sep, query = name.partition("?")
    out: dict[str, str] = {}
    for part in filter(None, query.split("&") if sep else []):
        key, eq, value = part.partition("=")
        if key not in ("adapter", "sha256", "batch") or not eq or not value:
            raise ConfigError(
                f"hf/{name}: unknown option {part!r} (supported: adapter=DIR, batch=N)"
            )
        out[key] = value
    return base, out
