"""Importing a new run: its items go in one open transaction, the run row last, or nothing.

:class:`RunImport` lets the importer hand items over one at a time (so a run can start asking
the model while its suite is still being read) and still keeps the store all-or-nothing: until
:meth:`RunImport.commit`, no other connection sees the run or any of its items, and
:meth:`RunImport.abort` (or a crash) leaves the store as it was.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from medsafe.errors import StoreError, SuiteError
from medsafe.provenance import SuiteHasher
from medsafe.schema import Item, RunSpec


class RunImport:
    """One new run being imported through ``conn`` (which holds the write lock until the end)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        spec: RunSpec,
        provenance: dict[str, Any],
        stamp: str,
        *,
        where: str = "store",
        batch: int = 256,
    ) -> None:
        self.spec = spec
        self._conn = conn
        self._provenance = provenance
        self._stamp = stamp
        self._batch_size = batch
        self._batch: list[tuple[Any, ...]] = []
        self._hasher = SuiteHasher()
        self.count = 0
        """Items added so far (the next item's index)."""
        conn.execute("BEGIN IMMEDIATE")
        self._open = True
        exists = conn.execute("SELECT 1 FROM runs WHERE run_id=?", (spec.run_id,)).fetchone()
        if exists is not None:
            self.abort()
            raise StoreError(f"{where}: run {spec.run_id!r} already exists")

    def add(self, item: Item) -> int:
        """Add the next item; returns its index in the suite."""
        idx = self.count
        self._batch.append(
            (
                self.spec.run_id,
                idx,
                item.id,
                item.kind,
                item.category,
                item.language,
                self._hasher.add(item),
            )
        )
        self.count += 1
        if len(self._batch) >= self._batch_size:
            self.flush()
        return idx

    def flush(self) -> None:
        """Insert the items added since the last flush (inside the open transaction).

        The primary key catches a duplicate id here, in O(1) memory; it is raised as a
        :class:`SuiteError` naming both positions.
        """
        if not self._batch:
            return
        try:
            self._conn.executemany("INSERT INTO items VALUES (?,?,?,?,?,?,?)", self._batch)
        except sqlite3.IntegrityError:
            self._raise_duplicate()
            raise
        self._batch.clear()

    def _raise_duplicate(self) -> None:
        seen: dict[str, int] = {}  # within the batch (PostgreSQL rolls the whole batch back)
        for row in self._batch:
            if row[2] in seen:
                raise SuiteError(
                    f"duplicate item id {row[2]!r} (items {seen[row[2]] + 1} and {row[1] + 1})",
                    path=self.spec.suite,
                    field="id",
                ) from None
            seen[row[2]] = row[1]
        for row in self._batch:
            first = self._conn.execute(
                "SELECT idx FROM items WHERE run_id=? AND item_id=?", (self.spec.run_id, row[2])
            ).fetchone()
            if first is not None and first[0] != row[1]:
                raise SuiteError(
                    f"duplicate item id {row[2]!r} (items {first[0] + 1} and {row[1] + 1})",
                    path=self.spec.suite,
                    field="id",
                ) from None

    def commit(self) -> RunSpec:
        """Store the run row (with the suite hash) and commit; returns the stored spec."""
        try:
            self.flush()
            if self.count == 0:
                raise SuiteError("the suite has no items", path=self.spec.suite)
            spec = self.spec.model_copy(update={"suite_hash": self._hasher.hexdigest()})
            self._conn.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    spec.run_id,
                    self._stamp,
                    self._stamp,
                    spec.model,
                    spec.suite,
                    spec.suite_hash,
                    self.count,
                    spec.model_dump_json(),
                    json.dumps(self._provenance, ensure_ascii=False, sort_keys=True),
                ),
            )
        except BaseException:
            self.abort()
            raise
        self._conn.execute("COMMIT")
        self._open = False
        self.spec = spec
        return spec

    def abort(self) -> None:
        """Roll everything back (safe to call twice)."""
        if self._open:
            self._open = False
            self._conn.execute("ROLLBACK")
