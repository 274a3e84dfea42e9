"""medsafe audit verify / export, and the audit entry of medsafe delete."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from medsafe.audit.chain import append
from medsafe.cli import app
from medsafe.store import Store
from tests.audit_support import write_run


def medsafe(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_verify_passes_then_names_the_edited_entry(db: Path) -> None:
    with Store(db) as store:
        for i in range(3):
            append(store.connection, "alice", "label", f"t/{i}", {"value": i})
    result = medsafe("audit", "verify", "--db", str(db))
    assert result.exit_code == 0 and "3 entries, chain intact" in result.output
    with Store(db) as store:
        store.connection.execute("""UPDATE audit_log SET payload='{"value":7}' WHERE seq=2""")
    result = medsafe("audit", "verify", "--db", str(db))
    assert result.exit_code == 1
    assert "BROKEN" in result.output and "first broken entry: seq 2" in result.output


def test_verify_on_a_missing_store(tmp_path: Path) -> None:
    result = medsafe("audit", "verify", "--db", str(tmp_path / "none.db"))
    assert result.exit_code == 2 and "no such store" in result.output


def test_export_writes_jsonl(db: Path, tmp_path: Path) -> None:
    with Store(db) as store:
        append(store.connection, "alice", "login", None, {"lang": "zh"})
        append(store.connection, "bob", "label", "r/q1", {"note": "好 <b>"})
    out = tmp_path / "audit.jsonl"
    assert medsafe("audit", "export", "--db", str(db), "-o", str(out)).exit_code == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["actor"] for r in rows] == ["alice", "bob"]
    assert rows[1]["payload"] == {"note": "好 <b>"} and rows[1]["prev_hash"] == rows[0]["hash"]
    result = medsafe("audit", "export", "--db", str(db))
    assert result.exit_code == 0 and result.output.count("\n") == 2


def test_delete_appends_an_audit_entry(db: Path) -> None:
    write_run(db)
    result = medsafe("delete", "run1", "--db", str(db), "--yes")
    assert result.exit_code == 0, result.output
    with Store(db) as store:
        rows = store.connection.execute("SELECT action, target, payload FROM audit_log").fetchall()
    assert [(a, t) for a, t, _ in rows] == [("run_delete", "run1")]
    assert json.loads(rows[0][2])["items"] == 4
    assert medsafe("audit", "verify", "--db", str(db)).exit_code == 0
