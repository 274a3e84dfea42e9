"""``replay/PATH``: score answers generated elsewhere, without calling any model.

The file is JSONL or CSV with a ``response`` column and either ``item_id`` (matched to the
item's id) or ``prompt`` (matched to the item's last user message). Prompts are compared after
:func:`normalise_prompt` (line endings to ``\\n``, surrounding whitespace stripped, Unicode
NFC); ``replay/PATH?match=exact`` (or the backend option ``match=exact``) compares them byte
for byte. Rows whose prompts are equal but whose responses differ are refused with both line
numbers (they could not be paired with their items); give them an ``item_id`` instead.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from medsafe.errors import BackendError, ConfigError, SuiteError
from medsafe.models.base import BackendOptions, ChatRequest, ChatResponse, backends
from medsafe.schema import Item
from medsafe.suites.loaders._io import open_csv
from medsafe.suites.loaders.jsonl import json_records

MatchMode = Literal["normalised", "exact"]
_MODES: dict[str, MatchMode] = {
    "normalised": "normalised",
    "normalized": "normalised",
    "exact": "exact",
}
NO_ANSWER = "no replayed answer"
"""The cause recorded for an item the replay file has no answer for."""


def normalise_prompt(text: str) -> str:
    """``text`` with ``\\r\\n``/``\\r`` turned into ``\\n``, surrounding whitespace stripped,
    in Unicode NFC (how ``match=normalised`` compares prompts)."""
    unified = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", unified.strip())


def parse_spec(spec: str, options: BackendOptions) -> tuple[str, MatchMode]:
    """``"PATH?match=exact"`` -> ``("PATH", "exact")``; the ``match`` backend option is the
    default when the spec has no query; the mode is ``normalised`` when neither says."""
    path, sep, query = spec.rpartition("?")
    if not sep:
        path, query = spec, ""
    raw = options.extra.get("match", "normalised")
    for part in filter(None, query.split("&")):
        key, eq, value = part.partition("=")
        if key != "match" or not eq:
            raise ConfigError(
                f"replay spec {spec!r}: unknown option {part!r} (supported: match=exact|normalised)"
            )
        raw = value
    mode = _MODES.get(raw.strip().lower())
    if mode is None:
        raise ConfigError(
            f"replay spec {spec!r}: match must be 'exact' or 'normalised', got {raw!r}"
        )
    return path, mode


def _rows(path: Path) -> list[tuple[int, dict[str, object]]]:
    if not path.exists():
        raise SuiteError("replay file not found", path=path)
    if path.suffix.lower() != ".csv":
        return list(json_records(path))
    table = open_csv(path)
    return [(line, dict(row)) for line, row in table.rows()]


class ReplayBackend:
    """Answers from a file of previously generated responses."""

    max_concurrency: int | None = None

    def __init__(self, path: str, options: BackendOptions) -> None:
        file, self.match = parse_spec(path, options)
        self.path = Path(file)
        self.model_id = f"replay/{self.path.name}"
        self.by_id: dict[str, str] = {}
        self.by_prompt: dict[str, str] = {}
        prompt_lines: dict[str, int] = {}
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
                key = self._key(prompt)
                if key in self.by_prompt and self.by_prompt[key] != response:
                    raise SuiteError(
                        f"the same prompt as line {prompt_lines[key]} ({self.match} match) with "
                        "a different response: the rows cannot be paired with their items; "
                        "give each row an 'item_id'",
                        path=self.path,
                        line=line,
                        field="prompt",
                    )
                prompt_lines.setdefault(key, line)
                self.by_prompt[key] = response
            else:
                raise SuiteError(
                    "each row needs 'item_id' or 'prompt'",
                    path=self.path,
                    line=line,
                    field="item_id",
                )

    def _key(self, prompt: str) -> str:
        return prompt if self.match == "exact" else normalise_prompt(prompt)

    def answer(self, item: Item | None, prompt: str) -> str | None:
        """The stored response for an item (by id, then by its last user message), or None."""
        if item is not None and item.id in self.by_id:
            return self.by_id[item.id]
        return self.by_prompt.get(self._key(prompt))

    def unanswered(self, items: Iterable[Item]) -> list[str]:
        """Ids of the non-dialogue ``items`` the file has no answer for, in order."""
        return [
            item.id
            for item in items
            if item.kind != "dialogue" and self.answer(item, item.last_user_text()) is None
        ]

    def preflight(self, items: Iterable[Item], *, show: int = 5) -> str | None:
        """One line to print before the run when some items have no replayed answer
        (how many, the first ``show`` ids), or None when every item has one."""
        listed = list(items)
        missing = self.unanswered(listed)
        if not missing:
            return None
        first = ", ".join(repr(i) for i in missing[:show])
        more = ", ..." if len(missing) > show else ""
        return (
            f"{len(missing)} of {len(listed)} items have no replayed answer in {self.path} "
            f"({self.match} prompt match; first: {first}{more}); they will be recorded as "
            f"failed ({NO_ANSWER!r}), not retried"
        )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """The stored response for the request's item, or a non-retryable error."""
        item = request.item
        prompt = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        text = self.answer(item, prompt)
        if text is not None:
            return ChatResponse(text=text, finish_reason="replay")
        which = item.id if item is not None else prompt[:60]
        raise BackendError(
            f"{NO_ANSWER} (no replayed response for item {which!r} in {self.path})",
            retryable=False,
        )

    async def aclose(self) -> None:
        """Nothing to release."""


@backends.register("replay")
def _factory(path: str, options: BackendOptions) -> ReplayBackend:
    return ReplayBackend(path, options)
