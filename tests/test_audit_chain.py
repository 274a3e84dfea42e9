"""The audit hash chain: append, verify, and tampering caught at the first broken entry."""

from __future__ import annotations

import itertools
import multiprocessing
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from medsafe.audit.canonical import canonical, sha256_hex
from medsafe.audit.chain import GENESIS, append, entry_hash, export, head, verify
from medsafe.audit.signoffs import record_signoff
from medsafe.store import Store
from tests.audit_support import write_run


def _log(db: Path, n: int = 5) -> sqlite3.Connection:
    conn = Store(db).connection
    for i in range(n):
        append(conn, "alice", "label", f"run1/q{i}", {"value": i, "note": "标签 ラベル"})
    return conn


def test_append_links_each_entry_to_the_previous_one(db: Path) -> None:
    conn = Store(db).connection
    assert head(conn) == GENESIS
    first = append(conn, "alice", "login", None, {})
    second = append(conn, "alice", "label", "run1/q1", {"value": 3})
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS and second.prev_hash == first.hash
    assert second.payload_hash == sha256_hex(canonical({"value": 3}))
    assert second.hash == entry_hash(
        2, second.ts, "alice", "label", "run1/q1", second.payload_hash, first.hash
    )
    assert head(conn) == second.hash
    report = verify(conn)
    assert report.ok and report.n == 2 and report.first_broken is None
    rows = list(export(conn))
    assert [r["seq"] for r in rows] == [1, 2] and rows[1]["payload"] == {"value": 3}


def test_entry_joins_the_callers_transaction(db: Path) -> None:
    conn = Store(db).connection
    conn.execute("BEGIN IMMEDIATE")
    append(conn, "alice", "label", "x", {"value": 1})
    conn.execute("ROLLBACK")
    assert head(conn) == GENESIS
    conn.execute("BEGIN IMMEDIATE")
    append(conn, "alice", "label", "x", {"value": 1})
    conn.execute("COMMIT")
    assert verify(conn).n == 1


def test_credentials_and_non_json_payloads_are_refused(db: Path) -> None:
    conn = Store(db).connection
    with pytest.raises(ValueError, match=r"payload\.user\.password"):
        append(conn, "admin", "user_add", "bob", {"user": {"password": "pw"}})
    with pytest.raises(ValueError, match="API-KEY"):
        append(conn, "admin", "run", "r", {"models": [{"API-KEY": "sk"}]})
    with pytest.raises(ValueError):
        append(conn, "admin", "run", "r", {"x": float("nan")})
    assert head(conn) == GENESIS


def test_an_edited_payload_is_named(db: Path) -> None:
    conn = _log(db)
    conn.execute("""UPDATE audit_log SET payload='{"note":"x","value":9}' WHERE seq=3""")
    report = verify(conn)
    assert not report.ok and report.first_broken == 3 and report.n == 2
    assert "payload edited" in report.reason


def test_an_edited_field_is_named(db: Path) -> None:
    conn = _log(db)
    conn.execute("UPDATE audit_log SET actor='mallory' WHERE seq=4")
    report = verify(conn)
    assert report.first_broken == 4 and "entry edited" in report.reason


def test_a_deleted_middle_row_is_named(db: Path) -> None:
    conn = _log(db)
    conn.execute("DELETE FROM audit_log WHERE seq=3")
    report = verify(conn)
    assert not report.ok and report.first_broken == 4
    assert "seq 3" in report.reason and "deleted" in report.reason


def test_a_deleted_first_row_is_named(db: Path) -> None:
    conn = _log(db)
    conn.execute("DELETE FROM audit_log WHERE seq=1")
    assert verify(conn).first_broken == 2


def _flip(column: str) -> str:
    """SQL for the column with its first hex digit changed: a forgery never equals a real row."""
    return f"(CASE substr({column}, 1, 1) WHEN 'a' THEN 'b' ELSE 'a' END || substr({column}, 2))"


def test_an_inserted_row_is_named(db: Path) -> None:
    conn = _log(db)
    conn.execute("DELETE FROM audit_log WHERE seq=5")
    conn.execute(
        "INSERT INTO audit_log SELECT 5, ts, 'mallory', action, target, payload, payload_hash, "
        f"{_flip('prev_hash')}, hash || 'x' FROM audit_log WHERE seq=4"
    )
    append(conn, "alice", "label", "x", {})  # the app goes on appending after the forgery
    report = verify(conn)
    assert not report.ok and report.first_broken == 5 and "prev_hash" in report.reason


def test_a_row_inserted_in_a_gap_is_named(db: Path) -> None:
    conn = _log(db)
    conn.execute(
        "INSERT INTO audit_log SELECT 99, ts, actor, action, target, payload, payload_hash, "
        f"{_flip('prev_hash')}, {_flip('hash')} FROM audit_log WHERE seq=2"
    )
    report = verify(conn)
    assert report.first_broken == 99 and "seq 6-98" in report.reason


def test_a_truncated_tail_is_caught_through_a_signoff(db: Path) -> None:
    write_run(db)
    conn = _log(db, 2)
    record_signoff(conn, "run1", "audrey", "approve", "fine", "")
    append(conn, "alice", "label", "x", {})
    assert verify(conn).ok
    conn.execute("DELETE FROM audit_log WHERE seq >= 3")  # the sign-off's entry and after
    report = verify(conn)
    assert not report.ok and report.first_broken == 3
    assert "sign-off #1" in report.reason and "truncated" in report.reason


def test_a_truncated_tail_is_caught_against_a_given_head(db: Path) -> None:
    conn = _log(db, 4)
    recorded = head(conn)
    assert verify(conn, [recorded]).ok
    conn.execute("DELETE FROM audit_log WHERE seq=4")
    assert verify(conn).ok  # a shorter chain is still a chain ...
    report = verify(conn, [recorded])  # ... but not the one the manifest saw
    assert not report.ok and report.first_broken == 4 and "truncated" in report.reason


def test_an_edited_signoff_row_is_caught(db: Path) -> None:
    write_run(db)
    conn = Store(db).connection
    record_signoff(conn, "run1", "audrey", "reject", "no", "")
    conn.execute("UPDATE signoffs SET decision='approve'")
    report = verify(conn)
    assert not report.ok and "sign-off #1" in report.reason and "edited" in report.reason


def _writer(db: str, who: str, n: int, start: Any) -> None:
    conn = Store(db).connection
    start.wait(30)
    for i in range(n):
        append(conn, who, "label", f"{who}/{i}", {"i": i})
        time.sleep(0.002)  # give the others the lock, as a person's clicks would
    conn.close()


def test_concurrent_writers_never_fork_the_chain(db: Path) -> None:
    Store(db).close()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(3)
    procs = [
        ctx.Process(target=_writer, args=(str(db), who, 150, start)) for who in ("p1", "p2", "p3")
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    conn = Store(db).connection
    report = verify(conn)
    assert report.ok and report.n == 450
    rows = list(export(conn))
    assert len({r["prev_hash"] for r in rows}) == 450
    switches = sum(a["actor"] != b["actor"] for a, b in itertools.pairwise(rows))
    assert switches > 2  # the writers really interleaved
