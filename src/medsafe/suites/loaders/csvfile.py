"""Canonical CSV: one item per row, canonical fields as columns (options as columns A-H or an
``options`` JSON column; structured fields as JSON text)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medsafe.errors import SuiteError
from medsafe.schema import OPTION_LETTERS, Item
from medsafe.suites.base import ColumnMapping, loaders
from medsafe.suites.loaders._canonical import CANONICAL_FIELDS, Where, build_item, rename
from medsafe.suites.loaders._io import UniqueIds, open_csv, require_items

TABLE_FIELDS = CANONICAL_FIELDS + tuple(OPTION_LETTERS)
"""Canonical fields plus the option columns ``A``..``H``."""


def check_mapping(columns: list[str], mapping: ColumnMapping, path: Path) -> None:
    """Every mapped source column must exist (a typo in ``--map`` is an error, not a no-op)."""
    for canonical, source in mapping.columns.items():
        if source not in columns:
            raise SuiteError(
                f"column {source!r} (mapped to {canonical!r}) is not in the file "
                f"(columns: {', '.join(columns)})",
                path=path,
                line=1,
                field=source,
            )


class CsvLoader:
    """Reads canonical CSV files (``.csv``, UTF-8, comma-separated, header row)."""

    name = "csv"
    description = "canonical medsafe items, one CSV row per item"

    def sniff(self, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() == ".csv"

    def load(self, path: Path, mapping: ColumnMapping) -> Iterator[Item]:
        table = open_csv(path)
        check_mapping(table.header, mapping, path)
        table.require([mapping.source("id")])
        ids = UniqueIds()
        count = 0
        for line, row in table.rows():
            item = build_item(rename(row, mapping, TABLE_FIELDS), Where(path, line))
            ids.add(item.id, path, line)
            count += 1
            yield item
        require_items(count, path)


loaders.register(CsvLoader.name)(CsvLoader())
