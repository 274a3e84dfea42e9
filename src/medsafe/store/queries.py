"""Reads the runner, the export and red-team discovery make of a store, as plain values.

The store's internal encoding does not leave this module: a score of the whole transcript
comes back with ``turn`` None (stored as ``-1``), a score without a judge with ``judge`` None
(stored as ``''``), and callers pass None the same way.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from medsafe.schema import Item, Message, Transcript
from medsafe.store.schema_sql import NO_JUDGE, NO_TURN
from medsafe.store.sqlite import Store, iter_pairs

# -- scoring ------------------------------------------------------------------------------------


def unscored_pairs(
    store: Store, run_id: str, scorer_name: str, *, chunk: int = 500
) -> Iterator[tuple[Item, Transcript]]:
    """Transcripts of ``run_id`` that ``scorer_name`` has not scored yet, in suite order."""
    return iter_pairs(store.connection, run_id, unscored_by=scorer_name, chunk=chunk)


def count_unscored(store: Store, run_id: str, scorer_name: str) -> int:
    """How many transcripts of ``run_id`` ``scorer_name`` has not scored yet."""
    row = store.connection.execute(
        "SELECT COUNT(*) FROM transcripts t WHERE t.run_id=? AND NOT EXISTS (SELECT 1 FROM "
        "scores s WHERE s.run_id=t.run_id AND s.item_id=t.item_id AND s.scorer=?)",
        (run_id, scorer_name),
    ).fetchone()
    return int(row[0])


# -- dialogues ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DialogueTurnRow:
    """One stored exchange of a conversation (table ``dialogue_turns``)."""

    seq: int
    turn: int
    kind: str
    user: str
    reply: str
    record: dict[str, Any]
    """The exchange's call records: ``target`` and, if any, ``attacker``."""


def dialogue_turns(store: Store, run_id: str, item_id: str) -> list[DialogueTurnRow]:
    """The stored exchanges of one conversation, in order."""
    rows = store.connection.execute(
        "SELECT seq, turn, kind, user, reply, record_json FROM dialogue_turns "
        "WHERE run_id=? AND item_id=? ORDER BY seq",
        (run_id, item_id),
    ).fetchall()
    return [
        DialogueTurnRow(int(seq), int(turn), str(kind), str(user), str(reply), json.loads(blob))
        for seq, turn, kind, user, reply, blob in rows
    ]


# -- export -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemRow:
    """An item of a run with its transcript's outcome (``status`` None while pending)."""

    idx: int
    item_id: str
    item: Item
    status: str | None
    error: str | None
    response: str | None


@dataclass(frozen=True)
class StoredScore:
    """A score as the ``scores`` table holds it, plus its ``extra`` details."""

    scorer: str
    judge: str | None
    value: float | None
    label: str | None
    status: str
    turn: int | None
    error: str | None
    extra: dict[str, Any]
    rationale: str | None = None

    @property
    def raw(self) -> str | None:
        """The judge's raw reply (``extra["raw"]``, or its failed replies joined), if kept."""
        raw = self.extra.get("raw")
        if isinstance(raw, str):
            return raw
        replies = self.extra.get("raw_replies")
        if isinstance(replies, list) and replies:
            return "\n\n".join(str(r) for r in replies)
        return None


def item_rows(store: Store, run_id: str, *, after: int = -1, chunk: int = 500) -> list[ItemRow]:
    """Up to ``chunk`` items of ``run_id`` after index ``after``, in suite order."""
    rows = store.connection.execute(
        "SELECT i.idx, i.item_id, i.item_json, t.status, t.error, t.response "
        "FROM items i LEFT JOIN transcripts t ON t.run_id = i.run_id AND t.item_id = i.item_id "
        "WHERE i.run_id = ? AND i.idx > ? ORDER BY i.idx LIMIT ?",
        (run_id, after, chunk),
    ).fetchall()
    return [
        ItemRow(int(idx), item_id, Item.model_validate_json(blob), status, error, response)
        for idx, item_id, blob, status, error, response in rows
    ]


def item_scores(store: Store, run_id: str, item_ids: Sequence[str]) -> dict[str, list[StoredScore]]:
    """The scores of each of ``item_ids`` (at most 998), by scorer, judge and turn."""
    marks = ",".join("?" * len(item_ids))
    rows = store.connection.execute(
        "SELECT item_id, scorer, judge, value, label, status, turn, error, score_json "
        f"FROM scores WHERE run_id=? AND item_id IN ({marks}) ORDER BY scorer, judge, turn",
        (run_id, *item_ids),
    )
    out: dict[str, list[StoredScore]] = defaultdict(list)
    for item_id, scorer, judge, value, label, status, turn, error, blob in rows:
        stored = json.loads(blob)
        out[item_id].append(
            StoredScore(
                scorer=scorer,
                judge=None if judge == NO_JUDGE else judge,
                value=value,
                label=label,
                status=status,
                turn=None if turn == NO_TURN else turn,
                error=error,
                extra=stored.get("extra", {}),
                rationale=stored.get("rationale"),
            )
        )
    return out


def item_flags(store: Store, run_id: str, item_ids: Sequence[str]) -> dict[str, list[str]]:
    """The flag names of each of ``item_ids`` (at most 998), sorted."""
    marks = ",".join("?" * len(item_ids))
    rows = store.connection.execute(
        f"SELECT item_id, flag FROM flags WHERE run_id=? AND item_id IN ({marks}) ORDER BY flag",
        (run_id, *item_ids),
    )
    out: dict[str, list[str]] = defaultdict(list)
    for item_id, flag in rows:
        out[item_id].append(flag)
    return out


def item_messages(store: Store, run_id: str, item_ids: Sequence[str]) -> dict[str, list[Message]]:
    """Every message exchanged for each of ``item_ids`` (at most 998) that has a transcript:
    the whole conversation of a dialogue, the prompt and answer of a single-turn item."""
    marks = ",".join("?" * len(item_ids))
    rows = store.connection.execute(
        f"SELECT item_id, transcript_json FROM transcripts WHERE run_id=? AND item_id IN ({marks})",
        (run_id, *item_ids),
    )
    return {item_id: list(Transcript.model_validate_json(blob).messages) for item_id, blob in rows}


def flag_details(store: Store, run_id: str, item_id: str) -> dict[str, Any]:
    """One item's review flags, by name, with their details (parsed JSON; text if not JSON)."""
    rows = store.connection.execute(
        "SELECT flag, detail FROM flags WHERE run_id=? AND item_id=? ORDER BY flag",
        (run_id, item_id),
    ).fetchall()
    out: dict[str, Any] = {}
    for flag, detail in rows:
        try:
            out[flag] = None if detail is None else json.loads(detail)
        except json.JSONDecodeError:
            out[flag] = detail
    return out


def find_item(store: Store, run_id: str, item_id: str) -> Item | None:
    """Item ``item_id`` of run ``run_id``, or None."""
    row = store.connection.execute(
        "SELECT item_json FROM items WHERE run_id=? AND item_id=?", (run_id, item_id)
    ).fetchone()
    return None if row is None else Item.model_validate_json(row[0])


# -- red-team discovery -------------------------------------------------------------------------


def items_scored_below(
    store: Store, run_id: str, scorer: str, judge: str | None, below: float, limit: int
) -> list[str]:
    """Ids (sorted, at most ``limit``) of items with an ``ok`` per-turn score from ``scorer``
    and ``judge`` (None: no judge) under ``below``."""
    rows = store.connection.execute(
        "SELECT DISTINCT item_id FROM scores WHERE run_id=? AND scorer=? AND judge=? "
        "AND turn>=0 AND status='ok' AND value < ? ORDER BY item_id LIMIT ?",
        (run_id, scorer, NO_JUDGE if judge is None else judge, below, limit),
    ).fetchall()
    return [str(item_id) for (item_id,) in rows]


def item_and_transcript(store: Store, run_id: str, item_id: str) -> tuple[Item, Transcript] | None:
    """An item and its transcript, or None if it has none."""
    row = store.connection.execute(
        "SELECT i.item_json, t.transcript_json FROM items i JOIN transcripts t ON "
        "t.run_id=i.run_id AND t.item_id=i.item_id WHERE i.run_id=? AND i.item_id=?",
        (run_id, item_id),
    ).fetchone()
    if row is None:
        return None
    return Item.model_validate_json(row[0]), Transcript.model_validate_json(row[1])


def iter_items_with_transcripts(
    conn: sqlite3.Connection, run_id: str, *, chunk: int = 500
) -> Iterator[tuple[Item, Transcript | None]]:
    """Every item of ``run_id`` in suite order with its transcript (None while it has none);
    keyset-paged (for the data-ethics scan of a run)."""
    last = -1
    while True:
        rows = conn.execute(
            "SELECT i.idx, i.item_json, t.transcript_json FROM items i LEFT JOIN transcripts t "
            "ON t.run_id=i.run_id AND t.item_id=i.item_id WHERE i.run_id=? AND i.idx>? "
            "ORDER BY i.idx LIMIT ?",
            (run_id, last, chunk),
        ).fetchall()
        if not rows:
            return
        for _idx, item_blob, transcript_blob in rows:
            transcript = None
            if transcript_blob:
                transcript = Transcript.model_validate_json(transcript_blob)
            yield Item.model_validate_json(item_blob), transcript
        last = rows[-1][0]
