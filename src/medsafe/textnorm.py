"""Text normalisation shared by scorers, the injection detector and the guardian.

Two forms of a text:

* :func:`clean` is what a judge (or a person) may read: NUL and other control characters
  removed (newlines and tabs kept), NFKC applied (full-width digits and letters fold to ASCII),
  zero-width, bidi-control and other invisible format characters removed. Text inside a
  right-to-left override (U+202E ... U+202C) is put in the order it is displayed in, so
  ``"\u202e.lliP eht hsurC\u202c"`` reads "Crush the Pill." as on screen. It never changes a
  visible letter, so Japanese and Chinese text reads exactly as written.
* :func:`readable` is what a classifier reads (the guardian embeds it): the clean text with
  Cyrillic and Greek look-alikes folded to Latin inside words that mix them with Latin letters
  ("Ѕure, һere" -> "Sure, here"), or made only of look-alikes inside mostly Latin text (a
  lone Cyrillic "а" included; a lone Greek letter is a symbol, as in "β-blocker", and stays), so
  a homoglyph never changes what a model sees. Russian or Greek prose stays as it is.
* :func:`matching_copy` is for pattern matching only: the clean text with Cyrillic and Greek
  look-alikes folded to Latin and spaced-out letters joined ("I G N O R E" -> "IGNORE",
  "忽 略" -> "忽略"). Never show or score this copy: folding is lossy by design.

Look-alikes are folded only from Cyrillic and Greek; Unicode's wider confusables table would
also fold katakana and kanji (カ -> 力, ロ -> 口) and corrupt Japanese.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

__all__ = ["CONFUSABLES", "clean", "display_order", "hides_text", "matching_copy", "readable"]

_KEEP = frozenset("\n\t")

CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "і": "i", "ї": "i", "ј": "j", "к": "k",
    "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x",
    "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g", "һ": "h", "ӏ": "l",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "І": "I", "Ї": "I", "Ј": "J", "К": "K",
    "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S",
    "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W", "Һ": "H", "Ӏ": "I",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "γ": "y",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}  # fmt: skip
"""Cyrillic and Greek letters that look like Latin ones, and the Latin letter they fold to."""
_FOLD = str.maketrans(CONFUSABLES)

_SPACED = re.compile(r"(?<![A-Za-z])[A-Za-z](?:[ ._*\-]{1,2}[A-Za-z](?![A-Za-z])){2,}")
"""Three or more single letters separated by a space, dot, dash, underscore or asterisk."""
_SEPARATORS = re.compile(r"[ ._*\-]")
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])[ \t]+(?=[{_CJK}])")
"""Spaces between two CJK characters (Chinese and Japanese do not separate words by spaces)."""


def _visible(char: str) -> bool:
    category = unicodedata.category(char)
    if category == "Cc":
        return char in _KEEP
    return category != "Cf"  # zero-width, bidi controls, soft hyphen, tag characters


_RLO, _LRO, _PDF = "\u202e", "\u202d", "\u202c"
_EMBEDDINGS = frozenset("\u202a\u202b")  # LRE, RLE: closed by PDF, no reordering of letters
_ISOLATES, _PDI = frozenset("\u2066\u2067\u2068"), "\u2069"  # LRI, RLI, FSI ... PDI
_MIRROR = str.maketrans("()[]{}<>«»‹›", ")(][}{><»«›‹")


def _clusters(text: str) -> list[str]:
    """``text`` as base characters with their combining marks attached."""
    out: list[str] = []
    for char in text:
        if out and unicodedata.category(char).startswith("M"):
            out[-1] += char
        else:
            out.append(char)
    return out


def _display_line(line: str) -> str:
    """One line with each right-to-left override's content in display order (reversed, its
    brackets mirrored); nested overrides, embeddings and isolates resolved like a stack."""
    # each frame: (opening mark, items); an item is (text, is a resolved inner block)
    stack: list[tuple[str, list[tuple[str, bool]]]] = [("", [])]

    def close() -> None:
        mark, items = stack.pop()
        if mark == _RLO:
            items = [(t if block else t.translate(_MIRROR), block) for t, block in items[::-1]]
        stack[-1][1].append(("".join(t for t, _ in items), True))

    for cluster in _clusters(line):
        head = cluster[0]
        if head in (_RLO, _LRO) or head in _EMBEDDINGS or head in _ISOLATES:
            stack.append((head, []))
        elif head == _PDF:
            if len(stack) > 1 and stack[-1][0] not in _ISOLATES:
                close()
        elif head == _PDI:
            while len(stack) > 1 and stack[-1][0] not in _ISOLATES:
                close()
            if len(stack) > 1:
                close()
        else:
            stack[-1][1].append((cluster, False))
    while len(stack) > 1:  # a paragraph's end closes what is still open
        close()
    return "".join(t for t, _ in stack[0][1])


def display_order(text: str) -> str:
    """``text`` with right-to-left overrides resolved into the order a reader sees.

    Only overrides reorder: Latin and CJK letters inside an embedding or isolate keep their
    order. The bidi marks themselves are left in place for :func:`clean` to remove. Written for
    left-to-right text (zh/ja/en): Hebrew or Arabic inside an override would come out reversed.
    """
    if _RLO not in text:
        return text
    return "\n".join(_display_line(line) for line in text.split("\n"))


def clean(text: str) -> str:
    """``text`` without control or invisible format characters, NFKC-normalised.

    Carriage returns become newlines; right-to-left overrides are resolved into display order
    (:func:`display_order`). Safe to show and to score: no visible letter changes.
    """
    text = display_order(text.replace("\r\n", "\n").replace("\r", "\n"))
    stripped = "".join(c for c in text if _visible(c))
    normalised = unicodedata.normalize("NFKC", stripped)
    # NFKC can itself produce format characters only in pathological input; strip again.
    return "".join(c for c in normalised if _visible(c))


_WORD = re.compile(r"[^\W\d_]+")
"""A run of letters (a word, or a run of CJK characters)."""
_LATIN_LETTER = re.compile(r"[A-Za-z]")
_CYRILLIC_GREEK = re.compile(r"[\u0370-\u03ff\u0400-\u052f]")
_CYRILLIC = re.compile(r"[\u0400-\u052f]")


def _folder(text: str) -> Callable[[re.Match[str]], str]:
    latin = len(_LATIN_LETTER.findall(text))
    lookalike_script = len(_CYRILLIC_GREEK.findall(text))

    def fold(match: re.Match[str]) -> str:
        word = match.group(0)
        if not any(c in CONFUSABLES for c in word):
            return word
        mixed = _LATIN_LETTER.search(word) is not None
        disguised = (
            (len(word) > 1 or _CYRILLIC.match(word) is not None)
            and latin > lookalike_script
            and all(c in CONFUSABLES for c in word)
        )
        return word.translate(_FOLD) if mixed or disguised else word

    return fold


def readable(text: str) -> str:
    """The :func:`clean` text with look-alike letters folded where they pose as Latin: what a
    reader sees, for a classifier to read (no spacing or CJK changes, unlike
    :func:`matching_copy`).

    A word is folded when it mixes Latin with Cyrillic/Greek look-alikes, or when it is made
    only of look-alikes inside a text with more Latin than Cyrillic/Greek letters.
    """
    cleaned = clean(text)
    return _WORD.sub(_folder(cleaned), cleaned)


def _emoji_joiner(text: str, i: int) -> bool:
    """Whether the zero-width joiner at ``i`` joins two symbols (an emoji sequence such as
    a family or a profession), where it is how the emoji is written, not a disguise."""
    before = text[i - 1] if i > 0 else ""
    after = text[i + 1] if i + 1 < len(text) else ""
    return all(c and unicodedata.category(c) == "So" for c in (before, after)) or (
        before == "\ufe0f" and bool(after) and unicodedata.category(after) == "So"
    )


def hides_text(text: str) -> bool:
    """Whether what a reader sees differs from what is stored in a way that can hide or
    disguise words: a control character (newline, tab and carriage return aside), an invisible
    format character (zero-width, bidi control, byte-order mark, soft hyphen; a zero-width
    joiner inside an emoji sequence aside), or a look-alike letter :func:`readable` folds."""
    for i, char in enumerate(text):
        category = unicodedata.category(char)
        if category == "Cc" and char not in "\n\t\r":
            return True
        if category == "Cf" and not (char == "\u200d" and _emoji_joiner(text, i)):
            return True
    cleaned = clean(text)
    return _WORD.sub(_folder(cleaned), cleaned) != cleaned  # readable(), without cleaning twice


def matching_copy(text: str) -> str:
    """The :func:`clean` text with look-alikes folded and spaced letters joined: for pattern
    matching only (never shown, scored or stored as the text)."""
    folded = clean(text).translate(_FOLD)
    joined = _SPACED.sub(lambda m: _SEPARATORS.sub("", m.group(0)), folded)
    return _CJK_GAP.sub("", joined)
