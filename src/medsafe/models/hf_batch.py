"""Batched greedy generation for ``hf/PATH``: concurrent requests share one ``generate`` call.

On a CPU a small model spends most of each decoding step on overhead that does not grow with
the batch (SmolLM2-135M on 2 cores: about 5 tokens/s alone, about 120 with 16 sequences), so
the runner's concurrent requests are gathered into one left-padded batch. Only greedy requests
with the same ``max_tokens`` share a batch (sampling seeds one request at a time); a request
alone takes the unbatched path. Greedy decoding of a padded batch gives the same tokens as one
by one up to floating-point rounding of the padded shapes (documented; rarely a near-tie flips).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

from medsafe.models._threaded import DEFAULT_MAX_TOKENS, SerialModel, chat_messages
from medsafe.models.base import ChatRequest, ChatResponse
from medsafe.schema import Usage

LINGER_S = 0.01
"""How long a batch that is not full waits for more requests."""

_Pending = tuple[ChatRequest, "asyncio.Future[ChatResponse]"]


def batch_key(request: ChatRequest) -> int | None:
    """Requests with equal keys (their ``max_tokens``) may share a batch; None: this one runs
    alone (it samples)."""
    if request.params.temperature:
        return None
    return request.params.max_tokens or DEFAULT_MAX_TOKENS


def generate_batch(
    loaded: Any, requests: list[ChatRequest], prompt: Callable[..., str]
) -> list[ChatResponse]:
    """Greedy answers to ``requests`` (same ``max_tokens``) from one left-padded ``generate``."""
    import torch

    tokenizer, model = loaded.tokenizer, loaded.model
    templated = bool(getattr(tokenizer, "chat_template", None))
    eos = {int(e) for e in _as_list(model.generation_config.eos_token_id)}
    if tokenizer.eos_token_id is not None:
        eos.add(int(tokenizer.eos_token_id))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        encoded = tokenizer(
            [prompt(tokenizer, chat_messages(r)) for r in requests],
            return_tensors="pt",
            padding=True,
            add_special_tokens=not templated,
        )
    finally:
        tokenizer.padding_side = side
    max_new = requests[0].params.max_tokens or DEFAULT_MAX_TOKENS
    with torch.no_grad():
        output = model.generate(
            **encoded, pad_token_id=pad, max_new_tokens=max_new, do_sample=False,
            temperature=None, top_p=None, top_k=None,
        )  # fmt: skip
    width = int(encoded["input_ids"].shape[1])
    answers = []
    for row, mask in zip(output, encoded["attention_mask"], strict=True):
        new = [int(t) for t in row[width:]]
        stop = next((i for i, t in enumerate(new) if t in eos), None)
        if stop is not None:
            new = new[: stop + 1]
        answers.append(
            ChatResponse(
                text=tokenizer.decode(new, skip_special_tokens=True),
                usage=Usage(prompt_tokens=int(mask.sum()), completion_tokens=len(new)),
                finish_reason="stop" if stop is not None or len(new) < max_new else "length",
            )
        )
    return answers


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


class RequestBatcher:
    """Gathers concurrent requests and runs them through ``model`` in batches of ``size``."""

    def __init__(
        self,
        model: SerialModel[Any],
        size: int,
        one: Callable[[Any, ChatRequest], ChatResponse],
        many: Callable[[Any, list[ChatRequest]], list[ChatResponse]],
    ) -> None:
        self._model = model
        self.size = size
        self._one = one
        self._many = many
        self._pending: list[_Pending] = []
        self._worker: asyncio.Task[None] | None = None
        self.calls = 0
        """``generate`` calls made (batched or not), for tests and benchmarks."""

    async def submit(self, request: ChatRequest) -> ChatResponse:
        """The answer to ``request``, computed with whatever else is waiting."""
        future: asyncio.Future[ChatResponse] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    def _take(self) -> list[_Pending]:
        first = self._pending[0]
        key = batch_key(first[0])
        if key is None or self.size <= 1:
            return [self._pending.pop(0)]
        group = [p for p in self._pending if batch_key(p[0]) == key][: self.size]
        for item in group:
            self._pending.remove(item)
        return group

    def _answer(self, requests: list[ChatRequest], model: Any) -> list[ChatResponse]:
        return (
            [self._one(model, requests[0])] if len(requests) == 1 else self._many(model, requests)
        )

    async def _drain(self) -> None:
        while self._pending:
            if len(self._pending) < self.size:
                await asyncio.sleep(LINGER_S)  # let the other workers' requests arrive
            group = self._take()
            requests = [r for r, _ in group]
            self.calls += 1
            try:
                answers = await self._model.run(partial(self._answer, requests))
            except Exception as exc:  # every waiter gets the cause
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), answer in zip(group, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
