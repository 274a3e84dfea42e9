"""Reading a dialogue transcript turn by turn (for per-turn scorers)."""

from __future__ import annotations

from collections.abc import Sequence

from medsafe.schema import Message


def turn_pairs(messages: Sequence[Message]) -> list[tuple[str, str]]:
    """``(user message, assistant reply)`` for each assistant turn, in order (turn k = index k-1).

    The user message is the last one before the reply ("" if none); system messages are skipped.
    """
    pairs: list[tuple[str, str]] = []
    last_user = ""
    for message in messages:
        if message.role == "user":
            last_user = message.content
        elif message.role == "assistant":
            pairs.append((last_user, message.content))
    return pairs
