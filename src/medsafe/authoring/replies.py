"""Read a model's JSON reply (model output is untrusted: every field is checked by its user)."""

from __future__ import annotations

import json
from typing import Any


def json_object(text: str | None) -> dict[str, Any]:
    """The JSON object in a reply (a code fence or text around it is ignored); ValueError
    saying what is wrong otherwise."""
    if text is None:
        raise ValueError("no reply")
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("reply has no JSON object")
    try:
        value = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise ValueError(f"reply is not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(value, dict):
        raise ValueError("reply is not a JSON object")
    return value


def text_field(obj: dict[str, Any], key: str) -> str:
    """``obj[key]`` as a non-empty string, stripped; ValueError naming the field."""
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {key!r} missing or not a non-empty string")
    return value.strip()
