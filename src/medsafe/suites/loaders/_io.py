"""Reading helpers shared by the loaders: UTF-8 lines and CSV records with physical line numbers,
and the duplicate-id check.

Every error is a :class:`~medsafe.errors.SuiteError` naming the file and the 1-based physical
line (for Parquet: the 1-based row).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medsafe.errors import SuiteError

_BOM = "\ufeff"
csv.field_size_limit(1 << 26)  # benchmark prompts can be long; the default (128 KiB) is not


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` for each physical line, decoded as UTF-8 (a leading BOM is
    dropped); line endings are kept so that CSV sees quoted newlines."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise SuiteError(f"cannot read file: {exc.strerror}", path=path) from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SuiteError(
                    f"not valid UTF-8 (byte {exc.start + 1} of the line); "
                    "re-save the file as UTF-8",
                    path=path,
                    line=number,
                ) from None
            if number == 1 and text.startswith(_BOM):
                text = text[1:]
            yield number, text


def read_text(path: Path) -> str:
    """The whole file as text, with the same UTF-8 checks and line numbers as :func:`text_lines`."""
    return "".join(text for _, text in text_lines(path))


@dataclass
class CsvTable:
    """A CSV file read record by record, remembering where each record starts."""

    path: Path
    header: list[str]
    records: Iterator[tuple[int, list[str]]]

    def require(self, columns: Iterable[str]) -> None:
        """Raise on line 1 for the first column in ``columns`` that the header lacks."""
        for column in columns:
            if column not in self.header:
                raise SuiteError(
                    f"missing column {column!r} (header has: {', '.join(self.header)})",
                    path=self.path,
                    line=1,
                    field=column,
                )

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """``(line, {column: cell})`` per record; a record with the wrong cell count is an error."""
        width = len(self.header)
        for line, cells in self.records:
            if len(cells) != width:
                raise SuiteError(
                    f"record has {len(cells)} cells but the header has {width} columns",
                    path=self.path,
                    line=line,
                )
            yield line, dict(zip(self.header, cells, strict=True))


def open_csv(path: Path) -> CsvTable:
    """Read the header of a CSV file; raise if the file is empty."""
    records = _csv_records(path)
    first = next(records, None)
    if first is None:
        raise SuiteError("file is empty", path=path)
    _, header = first
    return CsvTable(path=path, header=[h.strip() for h in header], records=records)


def _csv_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Records with the physical line each starts on; blank lines are skipped.

    A quote left open at the end of the file (which ``csv`` silently reads to the end, taking
    every later record into one cell) is an error naming the line where it opened.
    """
    numbered = text_lines(path)
    current = 0
    ended = False
    raw: list[tuple[int, str]] = []

    def lines() -> Iterator[str]:
        nonlocal current, ended
        for number, text in numbered:
            current = number
            raw.append((number, text))
            yield text
        ended = True

    reader = csv.reader(lines())
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise SuiteError(f"malformed CSV: {exc}", path=path, line=start) from None
        if ended and (opened := _unclosed_quote(raw)) is not None:
            raise SuiteError(
                "malformed CSV: unclosed quote (the quoted cell that opens on this line never "
                "closes, so every later line would be read into it)",
                path=path,
                line=opened,
            )
        if cells:
            yield start, cells
        start = current + 1
        raw.clear()


def _unclosed_quote(lines: list[tuple[int, str]]) -> int | None:
    """The line on which a quoted cell opens and is still open at the end of ``lines`` (one
    record's physical lines, read as ``csv`` does by default), or None."""
    at_start, quoted, after_quote, opened = True, False, False, 0
    for number, text in lines:
        for ch in text:
            if quoted:
                if ch == '"':
                    quoted, after_quote = False, True
                continue
            if after_quote and ch == '"':  # a doubled quote inside a quoted cell
                quoted, after_quote = True, False
                continue
            after_quote = False
            if ch == '"' and at_start:
                quoted, opened = True, number
            at_start = ch in ",\r\n"
    return opened if quoted else None


def csv_header(path: Path) -> list[str] | None:
    """The header row of a CSV file, or ``None`` when it cannot be read (for ``sniff``)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            row = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return [cell.strip() for cell in row] if row else None


def first_line(path: Path) -> str | None:
    """The first non-blank line of a text file, or ``None`` (for ``sniff``)."""
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for line in handle:
                if line.strip():
                    return line
    except (OSError, UnicodeDecodeError):
        return None
    return None


@dataclass
class UniqueIds:
    """Remembers where each item id was first seen, to report duplicates with both lines."""

    seen: dict[str, int] = field(default_factory=dict)
    """id -> file index << 32 | line (one int per id keeps memory small on big suites)."""
    paths: list[Path] = field(default_factory=list)

    def add(self, item_id: str, path: Path, line: int) -> None:
        """Record ``item_id``; raise naming both places if it was seen before."""
        packed = self.seen.get(item_id)
        if packed is not None:
            first_path, first_line_number = self.paths[packed >> 32], packed & 0xFFFFFFFF
            where = f"line {first_line_number}"
            if first_path != path:
                where = f"{first_path}:{first_line_number}"
            raise SuiteError(
                f"duplicate id {item_id!r} (first used on {where})",
                path=path,
                line=line,
                field="id",
            )
        if not self.paths or self.paths[-1] != path:
            self.paths.append(path)
        self.seen[item_id] = ((len(self.paths) - 1) << 32) | line


def require_items(count: int, path: Path) -> None:
    """Raise when a file or directory yielded no item at all."""
    if count == 0:
        raise SuiteError("contains no items", path=path)


def sorted_files(root: Path, patterns: Sequence[str]) -> list[Path]:
    """Files under ``root`` (recursively) matching any glob in ``patterns``, in a stable order."""
    found = {p for pattern in patterns for p in root.rglob(pattern) if p.is_file()}
    return sorted(found)
