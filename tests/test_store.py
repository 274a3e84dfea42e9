"""The SQLite store: run creation is atomic, streaming reads, the single writer, the cache."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from medsafe.errors import StoreError, SuiteError
from medsafe.schema import CallRecord, Item, Message, ModelParams, Score, Transcript
from medsafe.store import Store, StoreWriter
from medsafe.store.queries import item_and_transcript, item_scores, items_scored_below
from tests.conftest import create_run, make_mcq, make_spec


@pytest.fixture
def db(any_db: Path) -> Path:
    """Every test here runs on both engines: a SQLite file and a PostgreSQL database."""
    return any_db


def _transcript(run_id: str, item_id: str, text: str | None, key: str = "h") -> Transcript:
    ok = text is not None
    call = CallRecord(
        request_hash=key, status="ok" if ok else "failed", text=text, error=None if ok else "boom"
    )
    messages: tuple[Message, ...] = (Message(role="user", content="q"),)
    if ok:
        messages = (*messages, Message(role="assistant", content=text or ""))
    return Transcript(
        run_id=run_id,
        item_id=item_id,
        model="m/x",
        params=ModelParams(),
        messages=messages,
        calls=(call,),
        status="ok" if ok else "failed",
        error=None if ok else "boom",
    )


def test_create_run_computes_hash_and_streams_items(db: Path) -> None:
    items = [make_mcq(i) for i in range(2500)]
    spec = create_run(db, make_spec("r1", "openai/x"), items)
    assert len(spec.suite_hash) == 64
    with Store(db) as store:
        record = store.require_run("r1")
        assert record.n_items == 2500
        assert record.spec.suite_hash == spec.suite_hash
        back = list(store.iter_items("r1", chunk=300))
    assert [i.id for i in back] == [i.id for i in items]
    assert back[7] == items[7]


def test_create_run_is_atomic_on_bad_item(db: Path) -> None:
    def items() -> Iterator[Item]:
        yield make_mcq(1)
        yield make_mcq(2)
        raise SuiteError("broken", path="suite.jsonl", line=3, field="answer")

    with Store(db) as store, pytest.raises(SuiteError, match=r"suite\.jsonl:3"):
        store.create_run(make_spec("r1", "openai/x"), items(), {})
    with Store(db) as store:
        assert store.get_run("r1") is None
        assert store.connection.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0


def test_duplicate_ids_and_empty_suites_are_rejected(db: Path) -> None:
    with Store(db) as store:
        with pytest.raises(SuiteError, match="duplicate item id 'q00001'"):
            store.create_run(make_spec("r1", "openai/x"), [make_mcq(1), make_mcq(1)], {})
        with pytest.raises(SuiteError, match="no items"):
            store.create_run(make_spec("r2", "openai/x"), [], {})
        store.create_run(make_spec("r3", "openai/x"), [make_mcq(1)], {})
        with pytest.raises(StoreError, match="already exists"):
            store.create_run(make_spec("r3", "openai/x"), [make_mcq(1)], {})
        with pytest.raises(StoreError, match="no run 'nope'"):
            store.require_run("nope")


def test_writer_pending_items_and_cache(db: Path) -> None:
    create_run(db, make_spec("r1", "openai/x"), [make_mcq(i) for i in range(5)])
    writer = StoreWriter(db)
    writer.put_transcript(_transcript("r1", "q00000", "Answer: A", key="k0"))
    writer.put_transcript(_transcript("r1", "q00001", None, key="k1"))
    writer.flush()
    with Store(db) as store:
        pending = [i.id for i in store.iter_items("r1", pending_only=True)]
        assert pending == ["q00001", "q00002", "q00003", "q00004"]
        assert store.status_counts("r1") == {"n": 5, "ok": 1, "failed": 1, "pending": 3}
        hit = store.cached("k0")
        assert hit is not None and hit.text == "Answer: A"
        assert store.cached("k1") is None
    writer.close()


def test_new_transcript_drops_stale_scores(db: Path) -> None:
    create_run(db, make_spec("r1", "openai/x"), [make_mcq(0)])
    writer = StoreWriter(db)
    writer.put_transcript(_transcript("r1", "q00000", None))
    writer.put_scores(
        "r1", [Score(item_id="q00000", scorer="mcq", scorer_version="1", status="skipped")]
    )
    writer.flush()
    with Store(db) as store:
        assert len(store.scores_for("r1", "q00000")) == 1
    writer.put_transcript(_transcript("r1", "q00000", "Answer: B"))
    writer.close()
    with Store(db) as store:
        assert store.scores_for("r1", "q00000") == []


def test_concurrent_readers_never_see_locked(db: Path) -> None:
    create_run(db, make_spec("r1", "openai/x"), [make_mcq(i) for i in range(400)])
    writer = StoreWriter(db, batch=7)
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            with Store(db) as store:
                while not stop.is_set():
                    store.status_counts("r1")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(400):
        writer.put_transcript(_transcript("r1", f"q{i:05d}", f"Answer: {i}", key=f"k{i}"))
    writer.close()
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    with Store(db) as store:
        assert store.status_counts("r1")["ok"] == 400


def test_writer_error_is_raised_not_swallowed(db: Path) -> None:
    create_run(db, make_spec("r1", "openai/x"), [make_mcq(0)])
    writer = StoreWriter(db)
    writer.execute("INSERT INTO no_such_table VALUES (?)", [(1,)])
    with pytest.raises(RuntimeError, match="no_such_table"):
        writer.close()


def test_not_a_store_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a medsafe store"):
        Store(bad)
    sqlite3.connect(tmp_path / "other.db").close()


def test_queries_translate_no_turn_and_no_judge(db: Path) -> None:
    create_run(db, make_spec("r1", "openai/x"), [make_mcq(0), make_mcq(1), make_mcq(2)])

    def score(item: int, value: float, turn: int | None, judge: str = "") -> Score:
        item_id = f"q{item:05d}"
        return Score(
            item_id=item_id, scorer="s", scorer_version="1", judge=judge, value=value, turn=turn
        )

    writer = StoreWriter(db)
    writer.put_transcript(_transcript("r1", "q00000", "A"))
    writer.put_transcript(_transcript("r1", "q00001", "B"))
    writer.put_scores(
        "r1",
        [score(0, 0.2, 1), score(1, 0.9, 1), score(1, 0.1, None), score(1, 0.1, 2, judge="j")],
    )
    writer.close()
    with Store(db) as store:
        assert items_scored_below(store, "r1", "s", None, 0.5, 5) == ["q00000"]
        assert items_scored_below(store, "r1", "s", "j", 0.5, 5) == ["q00001"]
        stored = item_scores(store, "r1", ["q00001"])["q00001"]
        assert [(s.judge, s.turn, s.value) for s in stored] == [
            (None, None, 0.1),
            (None, 1, 0.9),
            ("j", 2, 0.1),
        ]
        found = item_and_transcript(store, "r1", "q00001")
        assert found is not None and found[0].id == "q00001" and found[1].response == "B"
        assert item_and_transcript(store, "r1", "q00002") is None
