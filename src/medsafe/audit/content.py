"""The content hash of a run: what a sign-off and a manifest vouch for.

``run_content_hash`` is the SHA-256 (hex) of the RFC 8785 canonical JSON of one object::

    {"dialogue_turns": [...], "format": "medsafe-run-content/1",
     "items": [...], "scores": [...], "transcripts": [...]}

- ``items``: each item as stored (``items.item_json``: the suite item, with its messages,
  options, answer, labels, rubric, source, licence, metadata), ordered by item id;
- ``transcripts``: each transcript as stored (``transcripts.transcript_json``: run and item
  id, model, parameters, messages sent, every call with its reply, status, usage, latency),
  ordered by item id;
- ``dialogue_turns``: every exchange of a multi-turn dialogue (``dialogue_turns.record_json``:
  the target's and attacker's calls, with ``item_id``, ``seq``, ``turn``, ``kind``, ``user``
  and ``reply`` added from their columns), ordered by item id and seq;
- ``scores``: every score as stored (``scores.score_json``: scorer and version, judge, value,
  label, rationale, raw reply and extras; the ``human`` judge's final labels included),
  ordered by item id, scorer, judge and turn.

"Ordered by id" is SQLite's BINARY order of the UTF-8 ids, so the hash does not depend on
the order rows were written in. Not included: the run's spec and provenance (timestamps,
versions, host), the flags (derived from the scores), statistics (computed from the above, so a
new statistics library never voids a sign-off), review tables and the model cache.

Rows are streamed into the hash: memory stays flat however large the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from medsafe.audit.canonical import canonical, canonical_json_text
from medsafe.errors import StoreError

__all__ = ["CONTENT_FORMAT", "content_document", "run_content_hash"]

CONTENT_FORMAT = "medsafe-run-content/1"
"""The ``format`` member of the hashed object; changes if what is hashed ever changes."""

_SECTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "dialogue_turns",
        "SELECT record_json, item_id, seq, turn, kind, user, reply FROM dialogue_turns "
        "WHERE run_id=? "
        "ORDER BY item_id, seq",
        "dialogue",
    ),
    ("items", "SELECT item_json FROM items WHERE run_id=? ORDER BY item_id", "plain"),
    (
        "scores",
        "SELECT score_json FROM scores WHERE run_id=? ORDER BY item_id, scorer, judge, turn",
        "plain",
    ),
    (
        "transcripts",
        "SELECT transcript_json FROM transcripts WHERE run_id=? ORDER BY item_id",
        "plain",
    ),
)
"""(member, query, how to read a row), in the RFC 8785 order of the member names."""


_TURN_COLUMNS = ("item_id", "seq", "turn", "kind", "user", "reply")


def _records(conn: sqlite3.Connection, run_id: str, sql: str, how: str) -> Iterator[Any]:
    cursor = conn.execute(sql, (run_id,))
    while rows := cursor.fetchmany(2000):
        for row in rows:
            record = json.loads(row[0])
            if how == "dialogue" and isinstance(record, dict):
                record = {**record, **dict(zip(_TURN_COLUMNS, row[1:], strict=True))}
            yield record


def _require_run(conn: sqlite3.Connection, run_id: str) -> None:
    if conn.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone() is None:
        raise StoreError(f"no run {run_id!r} in the store")


def _canonical_records(
    conn: sqlite3.Connection, run_id: str, sql: str, how: str
) -> Iterator[bytes]:
    """The canonical JSON of each record of :func:`_records`, by the fast encoder."""
    cursor = conn.execute(sql, (run_id,))
    while rows := cursor.fetchmany(2000):
        for row in rows:
            extra = dict(zip(_TURN_COLUMNS, row[1:], strict=True)) if how == "dialogue" else None
            yield canonical_json_text(row[0], extra)


def _chunks(conn: sqlite3.Connection, run_id: str) -> Iterator[bytes]:
    """The canonical JSON of the content object, piece by piece."""
    yield b"{"
    for number, (member, sql, how) in enumerate(_SECTIONS):
        if member == "items":
            yield b"," + canonical("format") + b":" + canonical(CONTENT_FORMAT)
        yield (b"," if number else b"") + canonical(member) + b":["
        first = True
        for record in _canonical_records(conn, run_id, sql, how):
            yield record if first else b"," + record
            first = False
        yield b"]"
    yield b"}"


def _compute(conn: sqlite3.Connection, run_id: str) -> str:
    _require_run(conn, run_id)
    digest = hashlib.sha256()
    for piece in _chunks(conn, run_id):
        digest.update(piece)
    return digest.hexdigest()


def _version(conn: sqlite3.Connection, run_id: str) -> int | None:
    """The run's change counter (0: unchanged since the counters' triggers exist), None where
    the store keeps none."""
    try:
        row = conn.execute(
            "SELECT version FROM web_run_versions WHERE run_id=?", (run_id,)
        ).fetchone()
    except sqlite3.OperationalError:  # no such table: a store without the counters
        return None
    return int(row[0]) if row is not None else 0


def _cached(conn: sqlite3.Connection, run_id: str, version: int) -> str | None:
    try:
        row = conn.execute(
            "SELECT content_hash FROM content_hashes WHERE run_id=? AND version=?",
            (run_id, version),
        ).fetchone()
    except sqlite3.OperationalError:
        return None
    return str(row[0]) if row is not None else None


def _remember(conn: sqlite3.Connection, run_id: str, version: int, digest: str) -> None:
    """Cache ``digest``; a store that cannot be written now (read-only, busy for more than a
    second) just does not."""
    waited = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute("PRAGMA busy_timeout=1000")
    try:
        with contextlib.suppress(sqlite3.OperationalError):
            conn.execute(
                "INSERT INTO content_hashes (run_id, version, content_hash) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET version=excluded.version, "
                "content_hash=excluded.content_hash",
                (run_id, version, digest),
            )
    finally:
        conn.execute(f"PRAGMA busy_timeout={int(waited):d}")


def run_content_hash(conn: sqlite3.Connection, run_id: str, *, reuse: bool = False) -> str:
    """SHA-256 hex of the canonical JSON of the run's items, transcripts, dialogue turns and
    scores (see the module docstring for exactly what). StoreError for an unknown run.

    Reads every row of the run (about 10 s for 200,000 items with their transcripts and
    scores). With ``reuse``, a hash computed since the run last changed (its change counter
    unchanged) is returned from the cache instead -- for display; a sign-off or manifest
    computes afresh. Each computation refreshes the cache.
    """
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")  # one snapshot: the counter and the rows it counts
    try:
        version = _version(conn, run_id)
        found = _cached(conn, run_id, version) if reuse and version is not None else None
        digest = found or _compute(conn, run_id)
    finally:
        if own:
            conn.execute("COMMIT")
    if version is not None and found is None:
        _remember(conn, run_id, version, digest)
    return digest


def content_document(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    """The hashed object itself, in memory (for inspection and tests; small runs only)."""
    _require_run(conn, run_id)
    document: dict[str, Any] = {"format": CONTENT_FORMAT}
    for member, sql, how in _SECTIONS:
        document[member] = list(_records(conn, run_id, sql, how))
    return document
