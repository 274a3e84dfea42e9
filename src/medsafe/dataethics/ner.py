"""Optional named-entity recognition of Japanese person names with GiNZA (``medsafe[ner]``).

GiNZA (``ja-ginza`` on PyPI, a spaCy pipeline trained on UD Japanese BCCWJ and GSK2014-A) tags
``Person`` entities; they are added to the pattern findings of Japanese texts when a scan is
asked for NER (``ScanConfig(ner=True)``, ``check-data --ner``). No Chinese model ships as a PyPI
wheel, so Chinese and English texts use the patterns only. The model loads once per process
(about 2 s) and runs offline.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from medsafe.errors import ConfigError

__all__ = ["NER_MODEL", "person_spans"]

NER_MODEL = "ja_ginza"
_PERSON = "Person"


@lru_cache(maxsize=1)
def _pipeline() -> Any:
    try:
        import spacy
    except ImportError:
        raise ConfigError(
            "NER needs spaCy and GiNZA: pip install 'medsafe[ner]' (ja-ginza from PyPI)"
        ) from None
    try:
        return spacy.load(NER_MODEL, exclude=["parser", "lemmatizer", "attribute_ruler"])
    except OSError as exc:
        raise ConfigError(
            f"the GiNZA model {NER_MODEL!r} is not installed: pip install 'medsafe[ner]' ({exc})"
        ) from None


def person_spans(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` of every GiNZA ``Person`` entity in ``text`` (original offsets)."""
    document = _pipeline()(text)
    return [(ent.start_char, ent.end_char) for ent in document.ents if ent.label_ == _PERSON]
