"""Write a redacted copy of a text, JSONL or CSV file (same format, same records)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from typing import Any, TextIO

from medsafe.dataethics.redaction import Redactor
from medsafe.dataethics.scan import ScanConfig, scan_text
from medsafe.dataethics.sources import Input, read_csv, read_jsonl, read_lines
from medsafe.errors import SuiteError

__all__ = ["write_redacted"]


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {key: _map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_strings(item, change) for item in value]
    return value


def write_redacted(
    source: Input, handle: TextIO, redactor: Redactor, config: ScanConfig | None = None
) -> int:
    """Write ``source`` with every finding replaced; returns the records written. A JSONL's
    keys and a CSV's header are kept as they are; only values change."""

    def change(text: str) -> str:
        return redactor.redact(text, scan_text(text, config=config))

    if source.kind == "run" or source.path is None:
        raise SuiteError("--redact works on a file (text, JSONL, CSV), not on a stored run")
    count = 0
    if source.kind == "csv":
        writer = csv.writer(handle, lineterminator="\n")
        header_written = False
        for _line, header, row in read_csv(source.path):
            if not header_written:
                writer.writerow(header)
                header_written = True
            writer.writerow([change(cell) for cell in row])
            count += 1
    elif source.kind in ("jsonl", "suite") and source.path.suffix.lower() in (".jsonl", ".ndjson"):
        for _line, record in read_jsonl(source.path):
            handle.write(json.dumps(_map_strings(record, change), ensure_ascii=False) + "\n")
            count += 1
    elif source.kind == "text":
        for _line, text in read_lines(source.path):
            handle.write(change(text) + "\n")
            count += 1
    else:
        raise SuiteError("--redact writes text, JSONL or CSV files only", path=source.path)
    return count
