"""Two runs' item-level values joined by item id, for paired comparisons (one SQL join).

Run B may live in another store file, which is attached to run A's connection read-only. On
PostgreSQL both runs must be in the same database (copy one there with ``medsafe db copy``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

from medsafe.errors import StoreError
from medsafe.store.aggregates import item_value_sql
from medsafe.store.pg import connect_pg, is_store_url, redacted, store_url


def _item_values_sql(schema: str, null_values: Mapping[str, float]) -> str:
    return (
        f"SELECT s.item_id AS item_id, {item_value_sql(null_values)} AS v FROM {schema}scores s "
        "WHERE s.run_id = ? AND s.scorer = ? AND s.judge = ? GROUP BY s.item_id"
    )


class PairedStores:
    """A read connection on run A's store with run B's store attached when it is another file."""

    def __init__(self, db_a: Path, db_b: Path) -> None:
        if is_store_url(db_a) or is_store_url(db_b):
            if store_url(db_a) != store_url(db_b):
                raise StoreError(
                    f"runs in two stores ({redacted(db_a)}, {redacted(db_b)}) are compared "
                    "within one: copy one run into the other store first (medsafe db copy)"
                )
            self.conn = connect_pg(db_a)
            self.schema_a = self.schema_b = ""
            return
        self.conn = sqlite3.connect(f"file:{db_a}?mode=ro", uri=True, isolation_level=None)
        self.schema_a = self.schema_b = ""  # unqualified: the main database
        if db_b.resolve() != db_a.resolve():
            self.conn.execute("ATTACH DATABASE ? AS rb", (f"file:{db_b}?mode=ro",))
            self.schema_b = "rb."

    def unpaired(self, run_a: str, run_b: str) -> tuple[int, int]:
        """Items only in run A, only in run B."""
        a, b = self.schema_a, self.schema_b
        row = self.conn.execute(
            f"SELECT (SELECT COUNT(*) FROM {a}items WHERE run_id = ? AND item_id NOT IN "
            f"(SELECT item_id FROM {b}items WHERE run_id = ?)), "
            f"(SELECT COUNT(*) FROM {b}items WHERE run_id = ? AND item_id NOT IN "
            f"(SELECT item_id FROM {a}items WHERE run_id = ?))",
            (run_a, run_b, run_b, run_a),
        ).fetchone()
        return int(row[0]), int(row[1])

    def pairs(
        self,
        run_a: str,
        run_b: str,
        scorer: str,
        judge: str,
        null_values: Mapping[str, float],
    ) -> list[tuple[str, float, float]]:
        """``(category, value in A, value in B)`` of every item both runs have a value for."""
        va = _item_values_sql(self.schema_a, null_values)
        vb = _item_values_sql(self.schema_b, null_values)
        sql = (
            f"WITH va AS ({va}), vb AS ({vb}) "
            "SELECT i.category, va.v, vb.v FROM va JOIN vb ON vb.item_id = va.item_id "
            f"JOIN {self.schema_a}items i ON i.run_id = ? AND i.item_id = va.item_id "
            "WHERE va.v IS NOT NULL AND vb.v IS NOT NULL"
        )
        args = (run_a, scorer, judge, run_b, scorer, judge, run_a)
        return [(str(c), float(a), float(b)) for c, a, b in self.conn.execute(sql, args)]

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> PairedStores:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
