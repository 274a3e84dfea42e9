"""NFKC-normalised copy of a text that keeps offsets into the original.

Full-width digits and letters (``０９０－１２３４``), full-width punctuation and circled or
compatibility forms fold to ASCII so that one set of patterns matches them; every character of
the copy remembers which original character it came from, so a span found in the copy maps back
to the exact original text. Characters are normalised one at a time (a composition across two
characters, such as half-width katakana with a separate voiced mark, is not folded: the
detectors do not need it, and offsets stay exact).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

__all__ = ["Normalised", "normalise"]

_DASHES = str.maketrans({"‐": "-", "‑": "-", "–": "-", "—": "-", "−": "-"})


@dataclass(frozen=True)
class Normalised:
    """The folded text and, for each of its characters, the index of the original character."""

    original: str
    text: str
    origin: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original ``[start, end)`` of the folded ``[start, end)`` (``end > start``)."""
        return self.origin[start], self.origin[end - 1] + 1


def normalise(text: str) -> Normalised:
    """Fold ``text`` character by character (NFKC, dashes to ``-``), keeping offsets."""
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = char if char.isascii() else unicodedata.normalize("NFKC", char)
        folded = folded.translate(_DASHES)
        if not folded:  # a character NFKC removes: keep a space so offsets stay aligned
            folded = " "
        out.append(folded)
        origin.extend([index] * len(folded))
    return Normalised(text, "".join(out), tuple(origin))
