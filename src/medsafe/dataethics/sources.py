"""Read what ``medsafe check-data`` is given: plain text, JSONL, CSV, a suite or a stored run.

Every reader yields the texts it finds with the 1-based physical line they start on (a CSV's
header is line 1; a text that spans lines inside a quoted CSV cell is located on the line where
each finding is), the item id (``id`` or ``item_id`` of a record) and the field (a column name,
or a dotted JSON path such as ``messages.0.content``). Bad input raises
:class:`~medsafe.errors.SuiteError` naming the file, line and field.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from medsafe.dataethics.scan import TextField, item_fields, record_fields
from medsafe.errors import SuiteError

__all__ = ["Input", "InputKind", "open_input", "read_csv", "read_jsonl", "read_lines"]

InputKind = Literal["text", "jsonl", "csv", "suite", "run"]
RUN_PREFIX = "run:"


@dataclass
class Input:
    """An opened input and, once read, the licences of the items it held."""

    ref: str
    kind: InputKind
    path: Path | None = None
    run_id: str | None = None
    db: Path | None = None
    licenses: Counter[str] = field(default_factory=Counter)
    """Items per licence ("" for none) when the input is a suite or items; empty otherwise."""
    sources: Counter[str] = field(default_factory=Counter)

    def fields(self) -> Iterator[TextField]:
        """Every text of the input, located."""
        if self.kind == "run":
            yield from self._run_fields()
        elif self.kind == "suite" and self.path is not None and self.path.suffix != ".jsonl":
            yield from self._suite_fields()
        elif self.kind == "csv":
            assert self.path is not None
            for line, header, row in read_csv(self.path):
                self._tally(dict(zip(header, row, strict=False)))
                item_id = _row_id(header, row)
                for name, cell in zip(header, row, strict=False):
                    if cell:
                        yield TextField(cell, name, line, item_id, raw_newlines=True)
                    line += cell.count("\n")
        elif self.kind in ("jsonl", "suite"):
            assert self.path is not None
            for line, record in read_jsonl(self.path):
                self._tally(record)
                item_id = _record_id(record)
                for name, text in record_fields(record):
                    if text:
                        yield TextField(text, name, line, item_id)
        else:
            assert self.path is not None
            for line, text in read_lines(self.path):
                if text.strip():
                    yield TextField(text, "text", line, None)

    def _tally(self, record: Any) -> None:
        if isinstance(record, dict) and "id" in record:
            self.licenses[str(record.get("license") or "")] += 1
            self.sources[str(record.get("source") or "")] += 1

    def _suite_fields(self) -> Iterator[TextField]:
        from medsafe.suites import open_suite

        assert self.path is not None
        for item in open_suite(str(self.path)).items():
            self.licenses[item.license or ""] += 1
            self.sources[item.source or ""] += 1
            yield from item_fields(item)

    def _run_fields(self) -> Iterator[TextField]:
        from medsafe.store import Store
        from medsafe.store.queries import iter_items_with_transcripts

        assert self.db is not None and self.run_id is not None
        if not self.db.exists():
            raise SuiteError("no such store", path=self.db)
        with Store(self.db) as store:
            store.require_run(self.run_id)
            for item, transcript in iter_items_with_transcripts(store.connection, self.run_id):
                self.licenses[item.license or ""] += 1
                self.sources[item.source or ""] += 1
                yield from item_fields(item)
                if transcript is None:
                    continue
                for index, message in enumerate(transcript.messages):
                    if message.role == "assistant" and message.content:
                        yield TextField(message.content, f"turns.{index}", None, item.id)


def _record_id(record: Any) -> str | None:
    if isinstance(record, dict):
        for key in ("id", "item_id"):
            value = record.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return str(value)
    return None


def _row_id(header: list[str], row: list[str]) -> str | None:
    for key in ("id", "item_id"):
        if key in header:
            index = header.index(key)
            if index < len(row) and row[index]:
                return row[index]
    return None


def _decode(raw: bytes, path: Path, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SuiteError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path, line=line
        ) from None


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of each physical line, without its line ending (BOM removed)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            text = _decode(raw, path, number)
            if number == 1:
                text = text.removeprefix("\ufeff")
            yield number, text.rstrip("\r\n")


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line, record)`` of each non-blank line of a JSONL file."""
    for number, text in read_lines(path):
        if not text.strip():
            continue
        try:
            yield number, json.loads(text)
        except json.JSONDecodeError as exc:
            raise SuiteError(
                f"not valid JSON ({exc.msg} at column {exc.colno})", path=path, line=number
            ) from None


def read_csv(path: Path) -> Iterator[tuple[int, list[str], list[str]]]:
    """``(line, header, cells)`` of each data row; ``line`` is where the row starts."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SuiteError(f"not UTF-8 text ({exc.reason})", path=path, line=line) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            if header is None:
                header = [name.strip() for name in row]
                start = reader.line_num + 1
                continue
            if len(row) > len(header):
                raise SuiteError(
                    f"row has {len(row)} cells but the header has {len(header)}",
                    path=path,
                    line=start,
                )
            if any(cell for cell in row):
                yield start, header, row
            start = reader.line_num + 1
    except csv.Error as exc:
        raise SuiteError(f"bad CSV ({exc})", path=path, line=start) from None


def open_input(ref: str, *, db: Path = Path("medsafe.db"), kind: InputKind | None = None) -> Input:
    """What ``ref`` names: ``run:RUN_ID`` (in ``db``), a bundled suite name, a directory (a
    suite), or a file read as ``kind`` (default: ``.jsonl`` JSONL, ``.csv`` CSV, ``.parquet``
    a suite, anything else plain text, one record per line)."""
    if ref.startswith(RUN_PREFIX):
        run_id = ref[len(RUN_PREFIX) :]
        if not run_id:
            raise SuiteError("run: needs a run id (run:RUN_ID)")
        return Input(ref, "run", run_id=run_id, db=db)
    path = Path(ref)
    if not path.exists():
        from medsafe.suites.catalog import bundled_suites

        bundled = bundled_suites().get(ref)
        if bundled is None:
            raise SuiteError("no such file, directory or bundled suite", path=ref)
        return Input(ref, "suite", path=bundled[0])
    if path.is_dir():
        return Input(ref, "suite", path=path)
    by_suffix: dict[str, InputKind] = {
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".csv": "csv",
        ".parquet": "suite",
    }
    return Input(ref, kind or by_suffix.get(path.suffix.lower(), "text"), path=path)
