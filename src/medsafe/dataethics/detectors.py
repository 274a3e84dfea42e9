"""Pattern detectors of personal identifiers in Chinese, Japanese and English text.

Every detector (:mod:`~medsafe.dataethics.numbers`, :mod:`~medsafe.dataethics.dates`,
:mod:`~medsafe.dataethics.places`, :mod:`~medsafe.dataethics.names`) reads the NFKC-folded copy
of the text (:mod:`medsafe.dataethics.normalize`) and yields candidate spans in it;
:func:`detect` resolves overlaps and maps spans back to the original text. What each type
matches (and what it deliberately does not) is in docs/data-ethics.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from medsafe.dataethics._common import Candidate, Detector
from medsafe.dataethics.dates import dates
from medsafe.dataethics.entities import EntityType
from medsafe.dataethics.names import person
from medsafe.dataethics.normalize import normalise
from medsafe.dataethics.numbers import cn_id, email, ip, mrn_detector, my_number, passport, phone
from medsafe.dataethics.places import addresses

__all__ = ["Candidate", "detect", "detect_language"]

_KANA = re.compile(r"[\u3041-\u309f\u30a1-\u30fa]")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def detect_language(text: str) -> str:
    """``ja`` when the text has kana, ``zh`` when it has Han characters, else ``en``."""
    if _KANA.search(text):
        return "ja"
    return "zh" if _HAN.search(text) else "en"


DETECTORS: tuple[Detector, ...] = (
    email,
    cn_id,
    my_number,
    passport,
    phone,
    dates,
    ip,
    addresses,
    person,
)
"""Built-in detectors; the MRN detector is added with the configured patterns."""

_PRIORITY: dict[str, int] = {
    "cn_resident_id": 0,
    "jp_my_number": 0,
    "email": 1,
    "passport": 2,
    "mrn": 2,
    "phone": 3,
    "date_of_birth": 4,
    "date": 5,
    "ip_address": 5,
    "address": 6,
    "postal_code": 6,
    "person": 7,
}


def _resolve(candidates: list[Candidate]) -> list[Candidate]:
    """Keep, among overlapping spans, the one of the highest-priority type (then the longest)."""
    ranked = sorted(candidates, key=lambda c: (_PRIORITY[c.type], -(c.end - c.start), c.start))
    kept: list[Candidate] = []
    for candidate in ranked:
        if all(candidate.end <= k.start or candidate.start >= k.end for k in kept):
            kept.append(candidate)
    return sorted(kept, key=lambda c: (c.start, c.end))


def detect(
    text: str, lang: str | None = None, mrn_patterns: Sequence[str] = ()
) -> list[tuple[EntityType, int, int]]:
    """``(type, start, end)`` spans of ``text`` (original offsets), in text order."""
    folded = normalise(text)
    language = lang or detect_language(folded.text)
    candidates: list[Candidate] = []
    for detector in (*DETECTORS, mrn_detector(mrn_patterns)):
        candidates.extend(c for c in detector(folded.text, language) if c.end > c.start)
    return [(c.type, *folded.span(c.start, c.end)) for c in _resolve(candidates)]
