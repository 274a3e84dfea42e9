"""The interface's translations: ``locales/<domain>.<lang>.json`` catalogs, merged per language.

Each domain (``core``, ``review``...) ships one flat JSON object per language (en, zh, ja);
keys are dotted names, values ``str.format`` templates. A key missing in a language falls
back to English, then to the key itself (a test checks that none is missing).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from medsafe.errors import MedsafeError

LOCALES = Path(__file__).with_name("locales")
LANGUAGES = ("en", "zh", "ja")


def _load(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MedsafeError(f"{path}: cannot read the catalog ({exc})") from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise MedsafeError(f"{path}: a catalog is one JSON object of strings")
    return data


@lru_cache(maxsize=1)
def catalogs() -> dict[str, dict[str, str]]:
    """Every language's merged catalog (domains in name order; a later domain may not
    redefine a key, which would be a clash between two teams' files)."""
    merged: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
    for path in sorted(LOCALES.glob("*.json")):
        domain, _, lang = path.stem.rpartition(".")
        if lang not in merged or not domain:
            raise MedsafeError(f"{path}: catalog names look like DOMAIN.LANG.json ({LANGUAGES})")
        table = _load(path)
        clash = sorted(set(table) & set(merged[lang]))
        if clash:
            raise MedsafeError(f"{path}: key {clash[0]!r} is defined by another catalog too")
        merged[lang].update(table)
    return merged


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **fmt)`` in ``lang`` (English, then the key, where a text is missing)."""
    table = catalogs().get(lang, {})
    english = catalogs()["en"]

    def t(key: str, **fmt: object) -> str:
        text = table.get(key) or english.get(key) or key
        return text.format(**fmt) if fmt else text

    return t
