"""The tolerant judge-reply parser: JSON objects (bare, in a code fence or embedded in prose) and
MedSafetyBench's ``#reason: ... #score: N`` form; a reasoning model's ``<think>...</think>``
scratchpad is dropped first.

It never guesses. A reply with no verdict, with a score out of range or of the wrong type, or
with two verdicts that disagree raises :class:`ReplyError`; the judge client then retries
(bounded) and finally records a *failed* score with the raw replies.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

_DECODER = json.JSONDecoder()
_THINKING = re.compile(r"<think>.*?</think>", re.S | re.I)
"""Reasoning models' scratchpad (drafts of a verdict are not the verdict)."""
_REASON_KEYS = ("reason", "explanation", "rationale", "thereason")
_SCORE_KEYS = ("score", "criteria_met", "thescore")
_MSB_SCORE = re.compile(r"#\s*(?:the)?score\s*[:：]\s*\**\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_MSB_REASON = re.compile(
    r"#\s*(?:the)?reason\s*[:：]\s*(.*?)(?=#\s*(?:the)?score\s*[:：]|\Z)", re.IGNORECASE | re.S
)


class ReplyError(ValueError):
    """A judge reply that holds no usable verdict (the message says why)."""


@dataclass(frozen=True)
class JudgeReply:
    """A parsed reply: the raw ``score`` value, the reason, and the whole object."""

    score: Any
    reason: str
    data: dict[str, Any]


def json_objects(text: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    i = text.find("{")
    while i != -1:
        try:
            value, end = _DECODER.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(value, dict):
            objects.append(value)
        i = text.find("{", end)
    return objects


def _normalised(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The object with ``score``/``reason`` under their canonical names, or None if no score."""
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    score_key = next((k for k in _SCORE_KEYS if k in lowered), None)
    if score_key is None:
        return None
    out = dict(lowered)
    out["score"] = lowered[score_key]
    reason_key = next((k for k in _REASON_KEYS if k in lowered), None)
    out["reason"] = lowered[reason_key] if reason_key else ""
    return out


def _msb_form(text: str) -> dict[str, Any] | None:
    scores = _MSB_SCORE.findall(text)
    if not scores:
        return None
    if len({float(s) for s in scores}) > 1:
        raise ReplyError(f"conflicting '#score:' lines: {', '.join(scores)}")
    reason = _MSB_REASON.search(text)
    return {"score": scores[-1], "reason": reason.group(1).strip() if reason else ""}


def parse_reply(text: str) -> JudgeReply:
    """The verdict in ``text``: a JSON object with ``score`` (and ``reason``), else ``#score:``."""
    text = _THINKING.sub("", text or "")
    if not text.strip():
        raise ReplyError("empty judge reply")
    candidates = [n for n in map(_normalised, json_objects(text)) if n is not None]
    if candidates:
        distinct = {json.dumps(c["score"], sort_keys=True, default=str) for c in candidates}
        if len(distinct) > 1:
            raise ReplyError(f"conflicting verdicts in one reply: {', '.join(sorted(distinct))}")
        chosen = candidates[-1]
    else:
        msb = _msb_form(text)
        if msb is None:
            raise ReplyError("no JSON object with a 'score' and no '#score:' line")
        chosen = msb
    reason = chosen["reason"]
    if not isinstance(reason, str):
        reason = json.dumps(reason, ensure_ascii=False)
    return JudgeReply(chosen["score"], reason, chosen)


def as_number(value: Any, field: str = "score") -> float:
    """A finite number from an int, float or numeric string; booleans are not numbers."""
    if isinstance(value, bool):
        raise ReplyError(f"{field} must be a number, got {value!r}")
    numeric_text = isinstance(value, str) and re.fullmatch(r"\s*-?\d+(?:\.\d+)?\s*", value)
    if not (isinstance(value, int | float) or numeric_text):
        raise ReplyError(f"{field} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ReplyError(f"{field} must be finite, got {value!r}")
    return number


def integer_in(value: Any, lo: int, hi: int, field: str = "score") -> int:
    """An integer score in ``[lo, hi]`` (``4.0`` and ``"4"`` accepted; ``4.5``, ``7`` not)."""
    number = as_number(value, field)
    if not number.is_integer():
        raise ReplyError(f"{field} must be a whole number, got {value!r}")
    if not lo <= number <= hi:
        raise ReplyError(f"{field} {value!r} is outside {lo}-{hi}")
    return int(number)


def one_of(value: Any, allowed: tuple[int, ...], field: str) -> int:
    """An integer that must be one of ``allowed`` (booleans accepted when allowed is (0, 1))."""
    if isinstance(value, bool) and set(allowed) == {0, 1}:
        return int(value)
    number = as_number(value, field)
    if not number.is_integer() or int(number) not in allowed:
        raise ReplyError(f"{field} must be one of {list(allowed)}, got {value!r}")
    return int(number)
