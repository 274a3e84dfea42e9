"""Precision and recall of the detectors on a labelled set (``medsafe check-data --evaluate``).

The set is JSONL, one snippet a line: ``{"id", "lang", "text", "entities": [{"type", "text"}]}``
(a snippet with no entities is a negative). A gold span is the first occurrence of its
``text`` in the snippet (``"start"`` sets it explicitly). A finding is a true positive when a
gold span of the same type overlaps it (each gold span is matched once); otherwise a false
positive. Precision = TP / (TP + FP), recall = TP / (TP + FN), each with a Wilson 95% interval
(:func:`medsafe.stats.intervals.wilson`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsafe.dataethics.entities import ENTITY_TYPES, STRUCTURED
from medsafe.dataethics.scan import ScanConfig, scan_text
from medsafe.dataethics.sources import read_jsonl
from medsafe.errors import SuiteError
from medsafe.stats.intervals import wilson

__all__ = ["Counts", "Evaluation", "Snippet", "evaluate", "load_labelled"]


@dataclass(frozen=True)
class Snippet:
    """One labelled text: gold spans ``(type, start, end)``."""

    id: str
    lang: str
    text: str
    gold: tuple[tuple[str, int, int], ...]


@dataclass
class Counts:
    """True positives, false positives and false negatives of one cell."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Counts) -> None:
        """Add ``other``'s counts to these."""
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn

    def as_dict(self) -> dict[str, Any]:
        """Counts, precision and recall with Wilson 95% intervals (None when undefined)."""
        out: dict[str, Any] = {"tp": self.tp, "fp": self.fp, "fn": self.fn}
        for name, hits, n in (
            ("precision", self.tp, self.tp + self.fp),
            ("recall", self.tp, self.tp + self.fn),
        ):
            interval = wilson(hits, n)
            out[name] = hits / n if n else None
            out[f"{name}_ci"] = [interval.lo, interval.hi] if n else None
        return out


@dataclass
class Evaluation:
    """Counts per ``(type, lang)``, and the snippets counted."""

    cells: dict[tuple[str, str], Counts] = field(default_factory=lambda: defaultdict(Counts))
    snippets: int = 0
    negatives: int = 0
    errors: list[str] = field(default_factory=list)
    """``id: missed|spurious TYPE 'text'`` for each error, to read."""

    def total(self, *, types: Iterable[str] | None = None, lang: str | None = None) -> Counts:
        """Counts summed over the cells of ``types`` (all by default) and ``lang``."""
        wanted = set(types) if types is not None else None
        out = Counts()
        for (kind, language), counts in self.cells.items():
            if (wanted is None or kind in wanted) and (lang is None or language == lang):
                out.add(counts)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Every figure, as JSON."""
        langs = sorted({lang for _, lang in self.cells})
        types = [t for t in ENTITY_TYPES if any(k == t for k, _ in self.cells)]
        return {
            "snippets": self.snippets,
            "negatives": self.negatives,
            "overall": self.total().as_dict(),
            "structured": self.total(types=STRUCTURED).as_dict(),
            "by_language": {lang: self.total(lang=lang).as_dict() for lang in langs},
            "by_type": {t: self.total(types=[t]).as_dict() for t in types},
            "by_type_language": {
                f"{t}/{lang}": self.cells[(t, lang)].as_dict()
                for t in types
                for lang in langs
                if (t, lang) in self.cells
            },
            "errors": self.errors,
        }


def load_labelled(path: Path) -> list[Snippet]:
    """Read a labelled set; SuiteError naming the line and field on a bad record."""
    snippets: list[Snippet] = []
    for line, record in read_jsonl(path):
        if not isinstance(record, dict):
            raise SuiteError("a snippet is a JSON object", path=path, line=line)
        text, lang = record.get("text"), record.get("lang")
        if not isinstance(text, str) or not text:
            raise SuiteError("missing or empty", path=path, line=line, field="text")
        if lang not in ("zh", "ja", "en"):
            raise SuiteError(
                f"must be zh, ja or en, not {lang!r}", path=path, line=line, field="lang"
            )
        gold: list[tuple[str, int, int]] = []
        for index, entity in enumerate(record.get("entities") or []):
            where = f"entities.{index}"
            kind, value = entity.get("type"), entity.get("text")
            if kind not in ENTITY_TYPES:
                raise SuiteError(f"unknown type {kind!r}", path=path, line=line, field=where)
            start = entity.get("start", text.find(value) if isinstance(value, str) else -1)
            if not isinstance(value, str) or start < 0 or text[start : start + len(value)] != value:
                raise SuiteError(f"{value!r} is not in the text", path=path, line=line, field=where)
            gold.append((kind, start, start + len(value)))
        snippets.append(Snippet(str(record.get("id", line)), lang, text, tuple(gold)))
    return snippets


def evaluate(snippets: Iterable[Snippet], config: ScanConfig | None = None) -> Evaluation:
    """Scan each snippet (language as labelled) and count matches against its gold spans."""
    result = Evaluation()
    for snippet in snippets:
        result.snippets += 1
        result.negatives += not snippet.gold
        found = scan_text(snippet.text, snippet.lang, config)
        matched: set[int] = set()
        for finding in found:
            hit = next(
                (
                    i
                    for i, (kind, start, end) in enumerate(snippet.gold)
                    if i not in matched
                    and kind == finding.type
                    and start < finding.end
                    and finding.start < end
                ),
                None,
            )
            if hit is None:
                result.cells[(finding.type, snippet.lang)].fp += 1
                result.errors.append(f"{snippet.id}: spurious {finding.type} {finding.text!r}")
            else:
                matched.add(hit)
                result.cells[(finding.type, snippet.lang)].tp += 1
        for index, (kind, start, end) in enumerate(snippet.gold):
            if index not in matched:
                result.cells[(kind, snippet.lang)].fn += 1
                result.errors.append(f"{snippet.id}: missed {kind} {snippet.text[start:end]!r}")
    return result
