"""Seed requests for red-team dialogues, streamed from text, JSONL or CSV files or a directory.

- ``.txt``: one request per line (blank lines skipped).
- ``.jsonl`` / ``.ndjson``: objects with ``prompt`` and optional ``category``, ``id``, ``language``.
- ``.csv``: the same fields as columns; a MedSafetyBench file
  (``med_safety_demonstrations_category_N.csv``, column ``harmful_medical_request``) is read
  as it is, its requests as the seeds.
- a directory: every such file in it (sorted, recursively); a record without ``category`` takes
  the file name's: ``category_N`` or ``med_safety_demonstrations_category_N`` (MedSafetyBench's
  numbering) becomes the AMA principle ``ama-N``, any other stem is used as it is.

Seeds that share an ``id`` are versions of one request (e.g. its ja and en translations): the
cross-lingual statistics pair conversations by it. Without an ``id`` a seed's id is a hash of
its text.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsafe.errors import SuiteError
from medsafe.schema import LANGUAGES, Language
from medsafe.suites.loaders._io import open_csv, text_lines
from medsafe.suites.loaders.jsonl import json_records

SUFFIXES = (".txt", ".jsonl", ".ndjson", ".csv")
_MSB_CATEGORY = re.compile(r"^(?:med_safety_demonstrations_)?category_([1-9])$")
MSB_REQUEST = "harmful_medical_request"
"""MedSafetyBench's request column, read as ``prompt`` when a CSV has no ``prompt`` column."""
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Seed:
    """One seed request and where it came from."""

    text: str
    category: str
    seed_id: str
    language: Language | None
    path: Path
    line: int
    license: str | None = None
    """The seed's licence (a JSONL/CSV ``license`` field), carried to the items built from it."""


def normalise(text: str) -> str:
    """The text dedup compares: NFKC, case-folded, whitespace collapsed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def text_id(text: str) -> str:
    """A stable id for a seed without one: ``s`` + 12 hex digits of its normalised text."""
    return "s" + hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:12]


def category_from_name(path: Path) -> str:
    """``category_3.txt`` -> ``ama-3``; any other file name -> its stem."""
    match = _MSB_CATEGORY.match(path.stem)
    return f"ama-{match.group(1)}" if match else path.stem


def iter_seeds(source: Path) -> Iterator[Seed]:
    """Every seed of a file or directory, lazily; a SuiteError names file, line and field."""
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
        if not files:
            raise SuiteError(f"no seed files ({', '.join(SUFFIXES)}) in this folder", path=source)
        for path in files:
            yield from _file_seeds(path, category_from_name(path))
    elif source.is_file():
        yield from _file_seeds(source, "")
    else:
        raise SuiteError("no such seed file or directory", path=source)


def _file_seeds(path: Path, default_category: str) -> Iterator[Seed]:
    suffix = path.suffix.lower()
    if suffix == ".txt":
        for line, raw in text_lines(path):
            text = raw.strip()
            if text:
                yield Seed(text, default_category, text_id(text), None, path, line)
    elif suffix in (".jsonl", ".ndjson"):
        for line, record in json_records(path):
            yield _record_seed(record, path, line, default_category)
    elif suffix == ".csv":
        table = open_csv(path)
        msb = "prompt" not in table.header and MSB_REQUEST in table.header
        if not msb:
            table.require(["prompt"])
        for line, row in table.rows():
            if msb:
                row = {"prompt": row[MSB_REQUEST]}
            yield _record_seed(row, path, line, default_category)
    else:
        raise SuiteError(f"seed files must be one of {', '.join(SUFFIXES)}", path=path)


def _field(record: dict[str, Any], name: str, path: Path, line: int) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int):
        raise SuiteError("must be text", path=path, line=line, field=name)
    return str(value).strip() or None


def _record_seed(record: dict[str, Any], path: Path, line: int, default_category: str) -> Seed:
    text = _field(record, "prompt", path, line)
    if text is None:
        raise SuiteError("a seed needs a non-empty prompt", path=path, line=line, field="prompt")
    language = _field(record, "language", path, line)
    if language is not None and language not in LANGUAGES:
        raise SuiteError(
            f"language must be one of {', '.join(LANGUAGES)}, got {language!r}",
            path=path,
            line=line,
            field="language",
        )
    seed_id = _field(record, "id", path, line) or text_id(text)
    if not re.fullmatch(r"[A-Za-z0-9._:-]+", seed_id):
        raise SuiteError(
            "id may hold only letters, digits and . _ : -", path=path, line=line, field="id"
        )
    category = _field(record, "category", path, line) or default_category
    license_ = _field(record, "license", path, line)
    return Seed(text, category, seed_id, language, path, line, license_)
