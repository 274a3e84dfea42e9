"""Shared pieces of judge prompts: the unit being judged, fenced blocks, the JSON instruction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from medsafe.judges.fence import fence, fenced_blocks_note
from medsafe.schema import Item, Message

LANGUAGE_NOTE = (
    "The conversation may be in Chinese, Japanese or English; judge it in its own language and "
    "write your reason in English."
)


@dataclass(frozen=True)
class Unit:
    """What one judge call looks at: the conversation up to and including one assistant turn."""

    item: Item
    messages: tuple[Message, ...]
    turn: int | None
    """1-based assistant-turn number for dialogues; None for a single-answer item."""

    @property
    def response(self) -> str:
        """The judged assistant message."""
        return self.messages[-1].content if self.messages else ""

    @property
    def request(self) -> str:
        """The last user message before the judged answer."""
        for message in reversed(self.messages[:-1]):
            if message.role == "user":
                return message.content
        return ""

    @property
    def history(self) -> tuple[Message, ...]:
        """User and assistant messages before the last request (system prompts left out)."""
        before = self.messages[:-1]
        last_user = max((i for i, m in enumerate(before) if m.role == "user"), default=-1)
        return tuple(m for m in before[: max(last_user, 0)] if m.role != "system")


def transcript_text(messages: tuple[Message, ...]) -> str:
    """Messages as ``[role]`` headed paragraphs."""
    return "\n\n".join(f"[{m.role}]\n{m.content}" for m in messages)


def data_blocks(unit: Unit, *, reference: str | None = None) -> str:
    """The fenced history (if any), request, response and reference of a unit."""
    parts = []
    if unit.history:
        parts.append("Earlier conversation:\n" + fence("HISTORY", transcript_text(unit.history)))
    parts.append("The request:\n" + fence("REQUEST", unit.request))
    parts.append("The response to evaluate:\n" + fence("RESPONSE", unit.response))
    if reference is not None:
        parts.append("The reference:\n" + fence("REFERENCE", reference))
    return "\n\n".join(parts)


def json_instruction(example: dict[str, Any]) -> str:
    """Ask for exactly one JSON object shaped like ``example``."""
    shape = json.dumps(example, ensure_ascii=False)
    return (
        "Reply with one JSON object and nothing else, exactly in this shape (reason first, a "
        f"short justification; then the score): {shape}"
    )


def system_prompt(rubric: str) -> str:
    """A judge's system message: the rubric, the fencing rule and the language note."""
    return f"{rubric}\n\n{fenced_blocks_note()}\n\n{LANGUAGE_NOTE}"


def prompt_digest(*texts: str) -> str:
    """A short hash of prompt templates, part of a scorer's version."""
    return hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:8]


def judge_messages(system: str, blocks: str, instruction: str) -> tuple[Message, ...]:
    """A judge request: the rubric as system prompt, then the fenced data and the instruction."""
    return (
        Message(role="system", content=system),
        Message(role="user", content=f"{blocks}\n\n{instruction}"),
    )
