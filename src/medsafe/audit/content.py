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

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from medsafe.audit.canonical import canonical
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
                extra = zip(
                    ("item_id", "seq", "turn", "kind", "user", "reply"), row[1:], strict=True
                )
                record = {**record, **dict(extra)}
            yield record


def _require_run(conn: sqlite3.Connection, run_id: str) -> None:
    if conn.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone() is None:
        raise StoreError(f"no run {run_id!r} in the store")


def _chunks(conn: sqlite3.Connection, run_id: str) -> Iterator[bytes]:
    """The canonical JSON of the content object, piece by piece."""
    yield b"{"
    for number, (member, sql, how) in enumerate(_SECTIONS):
        if member == "items":
            yield b"," + canonical("format") + b":" + canonical(CONTENT_FORMAT)
        yield (b"," if number else b"") + canonical(member) + b":["
        first = True
        for record in _records(conn, run_id, sql, how):
            yield canonical(record) if first else b"," + canonical(record)
            first = False
        yield b"]"
    yield b"}"


def run_content_hash(conn: sqlite3.Connection, run_id: str) -> str:
    """SHA-256 hex of the canonical JSON of the run's items, transcripts, dialogue turns and
    scores (see the module docstring for exactly what). StoreError for an unknown run."""
    _require_run(conn, run_id)
    digest = hashlib.sha256()
    for piece in _chunks(conn, run_id):
        digest.update(piece)
    return digest.hexdigest()


def content_document(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    """The hashed object itself, in memory (for inspection and tests; small runs only)."""
    _require_run(conn, run_id)
    document: dict[str, Any] = {"format": CONTENT_FORMAT}
    for member, sql, how in _SECTIONS:
        document[member] = list(_records(conn, run_id, sql, how))
    return document
