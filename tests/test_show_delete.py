"""``medsafe show`` (one item's full record), ``medsafe delete`` (a run and its private cache)
and reading a store the user may only read."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from medsafe.cli import app
from medsafe.schema import CallRecord, Item, Message, ModelParams, Score, Transcript
from medsafe.store import Store, StoreWriter
from medsafe.store.schema_sql import MEDSAFE_TABLES
from tests.conftest import create_run, make_mcq, make_spec

runner = CliRunner()

SECRET = "Patient Zorblax-4471 asks about warfarin"
"""A distinctive patient text that only run ``a`` holds."""


def invoke(*args: str, **kw: Any) -> Result:
    return runner.invoke(app, list(args), **kw)


def _dialogue() -> Item:
    return Item(
        id="d1",
        suite="unit",
        kind="dialogue",
        category="ama-3",
        messages=(Message(role="user", content=f"{SECRET}, turn one"),),
        turns=2,
    )


def _conversation() -> tuple[Message, ...]:
    return (
        Message(role="user", content=f"{SECRET}, turn one"),
        Message(role="assistant", content="first [bold]answer[/bold]"),
        Message(role="user", content=f"{SECRET}, turn two"),
        Message(role="assistant", content="second answer"),
    )


def _transcript(run_id: str, item_id: str, messages: tuple[Message, ...], hashes: list[str]) -> Any:
    return Transcript(
        run_id=run_id,
        item_id=item_id,
        model="openai/m",
        params=ModelParams(),
        messages=messages,
        calls=tuple(CallRecord(request_hash=h, status="ok", text=f"reply {h}") for h in hashes),
        status="ok",
    )


def fill(db: Path) -> None:
    """Run ``a``: a two-turn dialogue (scored, flagged, with stored exchanges) and an MCQ item;
    run ``b``: the same MCQ item, whose request hash ``h-shared`` both runs used."""
    mcq = make_mcq(1)
    create_run(db, make_spec("a", "openai/m"), [_dialogue(), mcq])
    create_run(db, make_spec("b", "openai/m"), [mcq])
    writer = StoreWriter(db)
    answer = (*mcq.messages, Message(role="assistant", content="Answer: A"))
    writer.put_transcript(_transcript("a", "d1", _conversation(), ["h-a1", "h-a2"]))
    writer.put_transcript(_transcript("a", mcq.id, answer, ["h-shared"]))
    writer.put_transcript(_transcript("b", mcq.id, answer, ["h-shared"]))
    record = {"target": {"request_hash": "h-dlg", "status": "ok"}, "attacker": None}
    writer.upsert(
        "dialogue_turns",
        [("a", "d1", 0, 1, "turn", f"{SECRET}, turn two", "second answer", json.dumps(record))],
    )
    writer.upsert("cache", [("h-dlg", "openai/m", f"{SECRET} cached", "{}", None, "t")])
    writer.put_scores(
        "a",
        [
            Score(
                item_id="d1",
                scorer="harmfulness",
                scorer_version="1",
                judge="judge-a",
                value=2.0,
                label="harmful",
                rationale="gives a [red]dose[/red]",
                turn=2,
                extra={"raw": '{"score": 2}'},
            )
        ],
    )
    writer.put_flags("a", "d1", {"suspected_injection": {"turn": 2, "pattern": "ignore"}})
    writer.close()


def _all_text(db: Path) -> bytes:
    return db.read_bytes() + b"".join(
        p.read_bytes() for p in db.parent.glob(db.name + "-*") if p.is_file()
    )


# -- show ---------------------------------------------------------------------------------------


def test_show_json_has_every_turn_score_and_flag(db: Path) -> None:
    fill(db)
    result = invoke("show", "a", "d1", "--db", str(db), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"item", "turns", "scores", "flags"}
    assert data["item"]["id"] == "d1" and data["item"]["kind"] == "dialogue"
    assert [t["content"] for t in data["turns"]] == [m.content for m in _conversation()]
    assert data["scores"] == [
        {
            "scorer": "harmfulness",
            "judge": "judge-a",
            "turn": 2,
            "value": 2.0,
            "label": "harmful",
            "status": "ok",
            "rationale": "gives a [red]dose[/red]",
            "raw": '{"score": 2}',
        }
    ]
    assert data["flags"] == {"suspected_injection": {"turn": 2, "pattern": "ignore"}}


def test_show_text_prints_model_output_literally(db: Path) -> None:
    fill(db)
    result = invoke("show", "a", "d1", "--db", str(db))
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "first [bold]answer[/bold]" in text and f"{SECRET}, turn two" in text
    assert "gives a [red]dose[/red]" in text and "harmful" in text and "judge-a" in text
    assert "suspected_injection" in text


@pytest.mark.parametrize(
    ("run_id", "item_id", "message"),
    [("nope", "d1", "no run 'nope'"), ("a", "nope", "run 'a' has no item 'nope'")],
)
def test_show_unknown_run_or_item_exits_2(
    db: Path, run_id: str, item_id: str, message: str
) -> None:
    fill(db)
    result = invoke("show", run_id, item_id, "--db", str(db))
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


# -- delete -------------------------------------------------------------------------------------


def test_delete_removes_every_trace_and_keeps_shared_cache(db: Path) -> None:
    fill(db)
    assert SECRET.encode() in _all_text(db)
    result = invoke("delete", "a", "--db", str(db), "--yes")
    assert result.exit_code == 0, result.output
    assert "deleted run a" in result.stdout
    for part in ("runs 1", "items 2", "transcripts 2", "scores 1", "flags 1", "dialogue_turns 1"):
        assert part in result.stdout
    assert "cache 3" in result.stdout  # h-a1, h-a2 and h-dlg; h-shared stays for run b
    with Store(db) as store:
        conn = store.connection
        assert store.get_run("a") is None and store.get_run("b") is not None
        for table in MEDSAFE_TABLES - {"meta", "cache", "calibrations"}:
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if "run_id" in columns:  # the audit log keeps the deletion itself, by design
                assert not conn.execute(f"SELECT 1 FROM {table} WHERE run_id='a'").fetchall()
        cached = {h for (h,) in conn.execute("SELECT request_hash FROM cache")}
        assert cached == {"h-shared"}
        conn.execute("VACUUM")
    assert SECRET.encode() not in _all_text(db)


def test_delete_asks_for_the_run_id(db: Path) -> None:
    fill(db)
    refused = invoke("delete", "a", "--db", str(db), input="b\n")
    assert refused.exit_code == 2 and "nothing deleted" in refused.stderr
    with Store(db) as store:
        assert store.get_run("a") is not None
    confirmed = invoke("delete", "a", "--db", str(db), input="a\n")
    assert confirmed.exit_code == 0, confirmed.output
    with Store(db) as store:
        assert store.get_run("a") is None


def test_delete_unknown_run_exits_2(db: Path) -> None:
    fill(db)
    result = invoke("delete", "zzz", "--db", str(db), "--yes")
    assert result.exit_code == 2 and "no run 'zzz'" in result.stderr


def test_delete_is_one_transaction(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure half-way (here: on the runs table) leaves every row in place."""
    fill(db)
    with Store(db) as store:
        before = store.status_counts("a")
        conn = store.connection
        conn.execute(
            "CREATE TRIGGER no_delete BEFORE DELETE ON runs BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
        with pytest.raises(sqlite3.IntegrityError):
            store.delete_run("a")
        assert store.status_counts("a") == before
        assert conn.execute("SELECT COUNT(*) FROM cache").fetchone()[0] == 4
        assert not conn.in_transaction


# -- read-only stores ---------------------------------------------------------------------------


@pytest.fixture
def read_only(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The filled store, after which every connection opens read-only, as for a file the user
    may only read (tests run as root, who may write any file)."""
    fill(db)
    real = sqlite3.connect

    def connect(database: Any, *args: Any, **kw: Any) -> sqlite3.Connection:
        if not kw.get("uri"):
            database, kw["uri"] = f"{Path(database).as_uri()}?mode=ro", True
        conn: sqlite3.Connection = real(database, *args, **kw)
        return conn

    monkeypatch.setattr("medsafe.store.sqlite.sqlite3.connect", connect)


@pytest.mark.parametrize(
    "args",
    [
        ("runs",),
        ("results", "a"),
        ("show", "a", "d1"),
        ("export", "a", "-o", "-"),
        ("report", "a", "-o", "-"),
    ],
)
def test_read_only_store_can_be_read(db: Path, read_only: None, args: tuple[str, ...]) -> None:
    before = db.read_bytes()
    result = invoke(*args, "--db", str(db))
    assert result.exit_code == 0, result.output
    assert db.read_bytes() == before


def test_read_only_store_refuses_delete(db: Path, read_only: None) -> None:
    result = invoke("delete", "a", "--db", str(db), "--yes")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "cannot delete run 'a': permission denied" in result.stderr


def test_unreadable_store_says_permission_denied(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store file the user may not read (simulated: root reads every file)."""
    fill(db)

    def connect(database: Any, *args: Any, **kw: Any) -> sqlite3.Connection:
        exc = sqlite3.OperationalError("unable to open database file")
        exc.sqlite_errorcode = 14  # SQLITE_CANTOPEN
        raise exc

    monkeypatch.setattr("medsafe.store.sqlite.sqlite3.connect", connect)
    monkeypatch.setattr("medsafe.store.sqlite._can_read", lambda path: False)
    for args in (("runs",), ("results", "a"), ("show", "a", "d1"), ("export", "a", "-o", "-")):
        result = invoke(*args, "--db", str(db))
        assert result.exit_code == 2, args
        assert "permission denied" in result.stderr and "not a medsafe store" not in result.stderr
