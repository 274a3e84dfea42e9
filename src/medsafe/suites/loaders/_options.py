"""Find the options of a multiple-choice question inside a whole prompt.

Sources such as MedES send the model one text: instructions, sometimes a worked example with its
own options, then the question and its options. The options of the *last* lettered run
(A, B, C... in order) are the item's options. Recognised markers at the start of a line:
``A. x``, ``A．x``, ``A、x``, ``A：x``, ``A: x``, ``A) x``, ``(A) x``, ``（A）x``; and options
written on one line (``A.yes，B.no``).
"""

from __future__ import annotations

import re

from medsafe.schema import OPTION_LETTERS

_LINE_MARKER = re.compile(
    r"^\s*(?:[(（]\s*(?P<p>[A-H])\s*[)）]|(?P<l>[A-H])\s*[.．、:：)）])\s*(?P<text>.*?)\s*$"
)
_INLINE_SEPARATOR = r"(?:[，,；;]\s*|\s+)"
_INLINE_MARKER = r"(?:[(（]\s*{0}\s*[)）]|{0}\s*[.．、:：)）])"


def find_options(text: str) -> dict[str, str]:
    """The last run of options A, B, C... in ``text`` (empty when there is none)."""
    runs: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = _LINE_MARKER.match(line)
        letter = (match.group("p") or match.group("l")) if match else None
        if match and letter is not None:
            if letter == "A":
                current = [(letter, match.group("text"))]
                runs.append(current)
                continue
            if current and letter == _next(current[-1][0]):
                current.append((letter, match.group("text")))
                continue
        if line.strip():
            current = []
    for run in reversed(runs):
        options = _split_inline(run[0][1]) if len(run) == 1 else {k: v for k, v in run if v}
        if len(options) >= 2:
            return options
    return {}


def _next(letter: str) -> str | None:
    index = OPTION_LETTERS.index(letter) + 1
    return OPTION_LETTERS[index] if index < len(OPTION_LETTERS) else None


def _split_inline(text: str) -> dict[str, str]:
    """Split the text after ``A.`` when options B, C... follow on the same line."""
    options: dict[str, str] = {}
    current: str | None = "A"
    rest = text
    while current is not None:
        following = _next(current)
        parts = [rest]
        if following is not None:
            marker = _INLINE_SEPARATOR + _INLINE_MARKER.format(following)
            parts = re.split(marker, rest, maxsplit=1)
        options[current] = parts[0].strip()
        current, rest = (following, parts[1]) if len(parts) == 2 else (None, "")
    return {k: v for k, v in options.items() if v}
