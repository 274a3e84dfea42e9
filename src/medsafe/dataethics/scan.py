"""Scan texts, records, items and stored runs for personal identifiers."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from medsafe.dataethics.detectors import detect, detect_language
from medsafe.dataethics.entities import Finding
from medsafe.schema import Item

__all__ = [
    "RunScan",
    "ScanConfig",
    "TextField",
    "item_fields",
    "record_fields",
    "scan_items",
    "scan_records",
    "scan_run",
    "scan_text",
]


@dataclass(frozen=True)
class ScanConfig:
    """What a scan looks for beyond the built-in detectors.

    ``mrn_patterns``: extra regular expressions of your hospital's medical-record numbers
    (group 1, when present, is the number); ``lang``: force a language (zh, ja, en) instead of
    guessing it per text.
    """

    mrn_patterns: tuple[str, ...] = ()
    lang: str | None = None
    ner: bool = False
    """Add GiNZA person names in Japanese texts (:mod:`medsafe.dataethics.ner`)."""


@dataclass(frozen=True)
class TextField:
    """One text to scan and where it came from."""

    text: str
    field: str
    line: int | None = None
    item_id: str | None = None
    raw_newlines: bool = False
    """The text's newlines are physical lines of the file (a quoted CSV cell): a finding's
    ``line`` is then the line it is on, not the line the text starts on."""


def scan_text(
    text: str, lang: str | None = None, config: ScanConfig | None = None
) -> list[Finding]:
    """Findings in ``text`` (offsets into ``text``), in text order."""
    config = config or ScanConfig()
    language = lang or config.lang or detect_language(text)
    spans = detect(text, language, config.mrn_patterns)
    if config.ner and language == "ja":
        from medsafe.dataethics.ner import person_spans

        taken = [(start, end) for _, start, end in spans]
        for start, end in person_spans(text):
            if all(end <= a or start >= b for a, b in taken):
                spans.append(("person", start, end))
                taken.append((start, end))
        spans.sort(key=lambda span: (span[1], span[2]))
    return [Finding(kind, start, end, text[start:end]) for kind, start, end in spans]


def scan_records(
    fields: Iterable[TextField], config: ScanConfig | None = None
) -> Iterator[Finding]:
    """Findings in each field, located by its line, item id and field name."""
    for where in fields:
        for finding in scan_text(where.text, config=config):
            line = where.line
            if line is not None and where.raw_newlines:
                line += where.text.count("\n", 0, finding.start)
            yield replace(finding, line=line, item_id=where.item_id, field=where.field)


def record_fields(
    record: Any, prefix: str = "", *, skip: frozenset[str] = frozenset()
) -> Iterator[tuple[str, str]]:
    """``(dotted.path, text)`` of every string in a decoded JSON value (``messages.0.content``,
    ``options.A``); top-level keys in ``skip`` are left out."""
    if isinstance(record, str):
        yield prefix or "text", record
    elif isinstance(record, Mapping):
        for key, value in record.items():
            if not prefix and key in skip:
                continue
            yield from record_fields(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(record, list | tuple):
        for index, value in enumerate(record):
            yield from record_fields(value, f"{prefix}.{index}" if prefix else str(index))


ITEM_SKIP = frozenset(
    {"id", "suite", "language", "kind", "answer", "category", "labels", "source", "license"}
)
"""Item fields that hold identifiers of the item itself, not text sent to a model."""


def item_fields(item: Item, line: int | None = None) -> Iterator[TextField]:
    """The texts of an item that a model (or a judge) is sent."""
    data = item.model_dump(mode="json", exclude_defaults=True)
    for name, text in record_fields(data, skip=ITEM_SKIP):
        if text:
            yield TextField(text, name, line, item.id)


def scan_items(items: Iterable[Item], config: ScanConfig | None = None) -> Iterator[Finding]:
    """Findings in every item's text."""
    for item in items:
        yield from scan_records(item_fields(item), config)


@dataclass(frozen=True)
class RunScan:
    """The data-ethics scan of a stored run: its items and the model's answers.

    ``by_type`` counts findings per type in the items, ``answers_by_type`` in the model's
    messages; ``items_with_identifiers`` counts items with a finding other than ``date``.
    """

    run_id: str
    items: int
    findings: tuple[Finding, ...]
    answer_findings: tuple[Finding, ...]
    by_type: dict[str, int] = field(default_factory=dict)
    answers_by_type: dict[str, int] = field(default_factory=dict)
    items_with_identifiers: int = 0
    licenses: dict[str, int] = field(default_factory=dict)
    """Items per ``license`` value ("" when an item has none)."""
    sources: dict[str, int] = field(default_factory=dict)


def scan_run(conn: sqlite3.Connection, run_id: str, config: ScanConfig | None = None) -> RunScan:
    """Scan a stored run's items and the answers its model gave (``field`` of an answer is
    ``turns.N``: its index among the transcript's messages)."""
    from medsafe.store.queries import iter_items_with_transcripts

    findings: list[Finding] = []
    answers: list[Finding] = []
    flagged: set[str] = set()
    licenses: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    count = 0
    for item, transcript in iter_items_with_transcripts(conn, run_id):
        count += 1
        licenses[item.license or ""] += 1
        sources[item.source or ""] += 1
        found = list(scan_items([item], config))
        if transcript is not None:
            said = [
                TextField(m.content, f"turns.{i}", None, item.id)
                for i, m in enumerate(transcript.messages)
                if m.role == "assistant" and m.content
            ]
            answers.extend(scan_records(said, config))
        findings.extend(found)
        if any(f.type != "date" for f in found):
            flagged.add(item.id)
    return RunScan(
        run_id,
        count,
        tuple(findings),
        tuple(answers),
        dict(Counter(f.type for f in findings)),
        dict(Counter(f.type for f in answers)),
        len(flagged),
        dict(licenses),
        dict(sources),
    )
