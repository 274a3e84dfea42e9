"""The store writer's batching: few statements per batch, same result as one by one; hold."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from medsafe.schema import Score
from medsafe.store import Store, StoreWriter
from medsafe.store.batching import MAX_VARIABLES, ClearScores, Sql, Upsert, execute_batch
from tests.conftest import create_run, make_mcq, make_spec
from tests.test_store import _transcript


def _score(item_id: str, label: str, scorer: str = "mcq") -> Score:
    return Score(item_id=item_id, scorer=scorer, scorer_version="1", value=1.0, label=label)


def _labels(db: Path, run_id: str, item_id: str) -> list[str | None]:
    with Store(db) as store:
        return [s.label for s in store.scores_for(run_id, item_id)]


def test_clear_after_earlier_scores_of_the_same_item_keeps_the_new_scores(db: Path) -> None:
    """scores(x), new transcript(x), scores(x) in one batch: only the later scores survive."""
    create_run(db, make_spec("r", "openai/x"), [make_mcq(0), make_mcq(1)])
    writer = StoreWriter(db, linger_s=5.0)  # everything below lands in one batch
    writer.put_scores("r", [_score("q00000", "stale", scorer="guardian")])
    writer.put_scores("r", [_score("q00001", "kept")])
    writer.put_transcript(_transcript("r", "q00000", "Answer: B"))
    writer.put_scores("r", [_score("q00000", "new")])
    writer.close()
    assert _labels(db, "r", "q00000") == ["new"]
    assert _labels(db, "r", "q00001") == ["kept"]


def test_batches_larger_than_the_variable_limit_are_split(db: Path) -> None:
    n = 3 * MAX_VARIABLES  # more rows than one statement may bind
    create_run(db, make_spec("r", "openai/x"), [make_mcq(i) for i in range(n)])
    writer = StoreWriter(db, linger_s=5.0)
    for i in range(n):
        writer.put_transcript(_transcript("r", f"q{i:05d}", f"Answer: {i}", key=f"k{i}"))
        writer.put_scores("r", [_score(f"q{i:05d}", "correct")])
    writer.close()
    with Store(db) as store:
        assert store.status_counts("r")["ok"] == n
        (scored,) = store.connection.execute("SELECT COUNT(*) FROM scores").fetchone()
        (cached,) = store.connection.execute("SELECT COUNT(*) FROM cache").fetchone()
    assert scored == n and cached == n


def test_same_key_written_twice_keeps_the_last_write() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE flags (a, b, c, d, PRIMARY KEY (a, b, c))")
    execute_batch(
        conn,
        [
            Upsert("flags", [("r", "x", "f", "first")]),
            Upsert("flags", [("r", "x", "f", "second"), ("r", "y", "f", "other")]),
        ],
    )
    assert conn.execute("SELECT b, d FROM flags ORDER BY b").fetchall() == [
        ("x", "second"),
        ("y", "other"),
    ]


def test_plain_sql_runs_where_it_was_queued() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE flags (a, b, c, d, PRIMARY KEY (a, b, c))")
    conn.execute("CREATE TABLE scores (run_id, item_id)")
    execute_batch(
        conn,
        [
            Upsert("flags", [("r", "x", "f", "1")]),
            Sql("DELETE FROM flags WHERE b=?", [("x",)]),
            Upsert("flags", [("r", "y", "f", "2")]),
            ClearScores([("r", "y")]),
        ],
    )
    assert conn.execute("SELECT b FROM flags").fetchall() == [("y",)]


def test_flush_does_not_wait_out_the_linger(db: Path) -> None:
    create_run(db, make_spec("r", "openai/x"), [make_mcq(0)])
    writer = StoreWriter(db, linger_s=30.0)
    writer.put_transcript(_transcript("r", "q00000", "Answer: A"))
    started = time.monotonic()
    writer.flush()
    assert time.monotonic() - started < 10.0  # a linger of 30 s was cut short
    with Store(db) as store:
        assert store.status_counts("r")["ok"] == 1
    writer.close()


def test_held_writes_are_released_in_order_or_discarded_but_for_cache_rows(db: Path) -> None:
    create_run(db, make_spec("r", "openai/x"), [make_mcq(0), make_mcq(1)])
    writer = StoreWriter(db)
    writer.hold()
    assert writer.holding
    writer.put_transcript(_transcript("r", "q00000", "Answer: A", key="k0"))
    writer.flush()
    with Store(db) as store:
        assert store.status_counts("r")["ok"] == 0  # held, not written
    writer.release()
    writer.flush()
    with Store(db) as store:
        assert store.status_counts("r")["ok"] == 1
    writer.hold()
    writer.put_transcript(_transcript("r", "q00001", "Answer: C", key="k1"))
    writer.put_scores("r", [_score("q00001", "correct")])
    assert writer.discard() == 3  # clear, transcript, scores; the cache row is kept
    assert not writer.holding
    writer.close()
    with Store(db) as store:
        assert store.status_counts("r")["ok"] == 1
        assert store.scores_for("r", "q00001") == []
        hit = store.cached("k1")
        assert hit is not None and hit.text == "Answer: C"


def test_upsert_refuses_an_unknown_table(db: Path) -> None:
    writer = StoreWriter(db)
    with pytest.raises(ValueError, match="does not write table"):
        writer.upsert("runs; DROP TABLE items", [("x",)])
    writer.close()
