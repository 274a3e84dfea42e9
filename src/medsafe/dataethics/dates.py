"""Dates in zh/ja/en forms (Japanese eras included), told apart as dates of birth or other dates."""

from __future__ import annotations

import re
from collections.abc import Iterator

from medsafe.dataethics import vocab
from medsafe.dataethics._common import Candidate, before, has_word
from medsafe.dataethics.entities import EntityType

__all__ = ["dates"]

# -- dates ----------------------------------------------------------------------------------
_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_YEAR = r"(?:18|19|20)\d{2}"
_DATES = (
    re.compile(
        rf"(?<![\d.])({_YEAR})\s*(?:年|[\-/.])\s*(\d{{1,2}})\s*(?:月|[\-/.])\s*(\d{{1,2}})"
        r"(?:\s*[日号])?(?!\d|\.\d)"
    ),
    re.compile(
        r"(?:令和|平成|昭和|大正|明治)\s*(元|\d{1,2})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日"
    ),
    re.compile(r"(?<![A-Za-z0-9])[RHST](\d{1,2})[./](\d{1,2})[./](\d{1,2})(?!\d|\.\d)"),
    re.compile(rf"(?<![\d./\-])(\d{{1,2}})[/.\-](\d{{1,2}})[/.\-]({_YEAR})(?!\d|[./\-]\d)"),
    re.compile(rf"\b{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+{_YEAR}\b"),
    re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\.?,?\s+{_YEAR}\b"),
)
_NOT_BIRTH_AFTER = "效产成活命长病"


def _plausible(match: re.Match[str], index: int) -> bool:
    """Month 1-12 and day 1-31 (either order for the numeric day/month/year form)."""
    if index in (0, 1, 2):
        month, day = int(match.group(2)), int(match.group(3))
        return 1 <= month <= 12 and 1 <= day <= 31
    if index == 3:
        first, second = sorted((int(match.group(1)), int(match.group(2))))
        return 1 <= first <= 12 and second <= 31
    return True


def _is_birth(text: str, start: int, end: int) -> bool:
    window = before(text, start, 18)
    if has_word(window, vocab.DOB_BEFORE):
        return True
    after = text[end : end + 4].lstrip()
    if after.startswith("生") and after[1:2] and after[1] in _NOT_BIRTH_AFTER:
        return False
    return any(after.startswith(word) for word in vocab.DOB_AFTER)


def dates(text: str, lang: str) -> Iterator[Candidate]:
    """Full dates: ``date_of_birth`` with a birth word next to them, else ``date``."""
    for index, pattern in enumerate(_DATES):
        for match in pattern.finditer(text):
            if not _plausible(match, index):
                continue
            kind: EntityType = "date_of_birth" if _is_birth(text, *match.span()) else "date"
            yield Candidate(kind, match.start(), match.end())
