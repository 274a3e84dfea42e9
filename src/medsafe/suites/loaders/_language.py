"""A deliberately small script-based language guess for sources that do not say (zh/ja/en only)."""

from __future__ import annotations

import re

from medsafe.schema import Language

_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def guess_language(text: str) -> Language:
    """``ja`` if the text has kana, ``zh`` if it has Han characters, else ``en``."""
    if _KANA.search(text):
        return "ja"
    if _HAN.search(text):
        return "zh"
    return "en"
