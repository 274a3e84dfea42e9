"""Canonical Parquet: the CSV layout as a Parquet table, read in record batches (streaming).

Structured fields may be native (struct / list columns) or JSON text. Error "lines" are 1-based
row numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medsafe.errors import SuiteError
from medsafe.schema import Item
from medsafe.suites.base import ColumnMapping, loaders
from medsafe.suites.loaders._canonical import Where, build_item, rename
from medsafe.suites.loaders._io import UniqueIds, require_items
from medsafe.suites.loaders.csvfile import TABLE_FIELDS, check_mapping

BATCH_ROWS = 1024
_MAGIC = b"PAR1"


class ParquetLoader:
    """Reads canonical Parquet files batch by batch."""

    name = "parquet"
    description = "canonical medsafe items in a Parquet table (one row per item)"

    def sniff(self, path: Path) -> bool:
        if not path.is_file():
            return False
        if path.suffix.lower() == ".parquet":
            return True
        try:
            with path.open("rb") as handle:
                return handle.read(4) == _MAGIC
        except OSError:
            return False

    def load(self, path: Path, mapping: ColumnMapping) -> Iterator[Item]:
        import pyarrow as pa  # imported here: pyarrow costs ~0.15 s at CLI start-up
        import pyarrow.parquet as pq

        try:
            table = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise SuiteError(f"not a readable Parquet file: {exc}", path=path) from None
        columns = list(table.schema_arrow.names)
        check_mapping(columns, mapping, path)
        if mapping.source("id") not in columns:
            raise SuiteError(
                f"missing column 'id' (columns: {', '.join(columns)})",
                path=path,
                field=mapping.source("id"),
            )
        ids = UniqueIds()
        row = 0
        for batch in table.iter_batches(batch_size=BATCH_ROWS):
            for record in batch.to_pylist():
                row += 1
                item = build_item(rename(record, mapping, TABLE_FIELDS), Where(path, row))
                ids.add(item.id, path, row)
                yield item
        require_items(row, path)


loaders.register(ParquetLoader.name)(ParquetLoader())
