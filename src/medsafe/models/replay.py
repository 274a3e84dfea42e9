"""``replay/PATH``: score answers generated elsewhere, without calling any model.

The file is JSONL or CSV with a ``response`` column and either ``item_id`` (matched to the
item's id) or ``prompt`` (matched to the exact text of the item's last user message).
"""

from __future__ import annotations

import csv
from pathlib import Path

from medsafe.errors import BackendError, SuiteError
from medsafe.models.base import BackendOptions, ChatRequest, ChatResponse, backends
from medsafe.suites.loaders.jsonl import json_records


def _rows(path: Path) -> list[tuple[int, dict[str, object]]]:
    if not path.exists():
        raise SuiteError("replay file not found", path=path)
    if path.suffix.lower() != ".csv":
        return list(json_records(path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SuiteError(f"not UTF-8 ({exc.reason})", path=path) from exc
    reader = csv.DictReader(text.splitlines())
    return [(i + 2, dict(row)) for i, row in enumerate(reader)]


class ReplayBackend:
    """Answers from a file of previously generated responses."""

    max_concurrency: int | None = None

    def __init__(self, path: str, options: BackendOptions) -> None:
        self.path = Path(path)
        self.model_id = f"replay/{self.path.name}"
        self.by_id: dict[str, str] = {}
        self.by_prompt: dict[str, str] = {}
        rows = _rows(self.path)
        if not rows:
            raise SuiteError("replay file has no rows", path=self.path)
        for line, row in rows:
            response = row.get("response")
            if not isinstance(response, str):
                raise SuiteError(
                    "missing or non-text value", path=self.path, line=line, field="response"
                )
            item_id, prompt = row.get("item_id"), row.get("prompt")
            if isinstance(item_id, str) and item_id:
                if item_id in self.by_id:
                    raise SuiteError(
                        f"duplicate item_id {item_id!r}", path=self.path, line=line, field="item_id"
                    )
                self.by_id[item_id] = response
            elif isinstance(prompt, str) and prompt:
                self.by_prompt[prompt] = response
            else:
                raise SuiteError(
                    "each row needs 'item_id' or 'prompt'",
                    path=self.path,
                    line=line,
                    field="item_id",
                )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """The stored response for the request's item, or a non-retryable error."""
        item = request.item
        if item is not None and item.id in self.by_id:
            return ChatResponse(text=self.by_id[item.id], finish_reason="replay")
        prompt = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        if prompt in self.by_prompt:
            return ChatResponse(text=self.by_prompt[prompt], finish_reason="replay")
        which = item.id if item is not None else prompt[:60]
        raise BackendError(f"no replayed response for item {which!r} in {self.path}")

    async def aclose(self) -> None:
        """Nothing to release."""


@backends.register("replay")
def _factory(path: str, options: BackendOptions) -> ReplayBackend:
    return ReplayBackend(path, options)
