"""What every detector shares: the candidate span type and context-word helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from medsafe.dataethics import vocab
from medsafe.dataethics.entities import EntityType

__all__ = ["CJK", "JA_WORD", "Candidate", "Detector", "before", "digits", "has_word", "not_an_id"]

CJK = r"\u4e00-\u9fff々"
JA_WORD = r"\u4e00-\u9fff々\u3041-\u309f\u30a1-\u30faー"
"""Characters of a Japanese word: kanji, 々, hiragana, katakana and the long-vowel mark."""


@dataclass(frozen=True)
class Candidate:
    """A span ``[start, end)`` of the folded text and its type."""

    type: EntityType
    start: int
    end: int


Detector = Callable[[str, str], Iterator[Candidate]]


def before(text: str, start: int, width: int = 16) -> str:
    """The ``width`` characters before ``start``, lower-cased."""
    return text[max(0, start - width) : start].lower()


def has_word(window: str, words: Sequence[str]) -> bool:
    """Whether any of ``words`` occurs in ``window``."""
    return any(word in window for word in words)


def not_an_id(text: str, start: int) -> bool:
    """A lot, order, article or version number is written right before ``start``."""
    return has_word(before(text, start, 12), vocab.NOT_AN_ID_BEFORE)


def digits(value: str) -> str:
    """The digits of ``value``."""
    return "".join(ch for ch in value if ch.isdigit())
