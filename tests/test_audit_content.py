"""The run content hash and sign-offs (stale when the content changes)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import rfc8785

from medsafe.audit.chain import export, verify
from medsafe.audit.content import content_document, run_content_hash
from medsafe.audit.signoffs import record_signoff, signoffs_for
from medsafe.errors import StoreError
from medsafe.store import Store, StoreWriter
from tests.audit_support import score, transcript, write_run


def test_hash_is_the_sha256_of_the_rfc8785_document(db: Path) -> None:
    write_run(db)
    conn = Store(db).connection
    document = content_document(conn, "run1")
    assert [len(document[k]) for k in ("items", "transcripts", "dialogue_turns", "scores")] == [
        4,
        4,
        4,
        4,
    ]
    assert document["dialogue_turns"][0]["reply"] == "reply 0"
    expected = hashlib.sha256(rfc8785.dumps(document)).hexdigest()
    assert run_content_hash(conn, "run1") == expected
    assert run_content_hash(conn, "run1") == expected  # stable


def test_hash_does_not_depend_on_the_order_rows_were_written(tmp_path: Path) -> None:
    write_run(tmp_path / "a.db", order=[0, 1, 2, 3])
    write_run(tmp_path / "b.db", order=[3, 1, 0, 2])
    a = run_content_hash(Store(tmp_path / "a.db").connection, "run1")
    b = run_content_hash(Store(tmp_path / "b.db").connection, "run1")
    assert a == b


def test_hash_changes_with_a_score_a_transcript_or_a_turn(db: Path) -> None:
    items = write_run(db)
    conn = Store(db).connection
    seen = {run_content_hash(conn, "run1")}
    writer = StoreWriter(db)
    writer.put_scores("run1", [score(items[2], 0.0)])  # was 0.0: unchanged
    writer.flush()
    assert run_content_hash(conn, "run1") in seen
    writer.put_scores("run1", [score(items[2], 1.0)])
    writer.flush()
    seen.add(run_content_hash(conn, "run1"))
    writer.put_transcript(transcript("run1", items[1], answer="B"))
    writer.flush()
    seen.add(run_content_hash(conn, "run1"))
    writer.close()
    conn.execute("UPDATE dialogue_turns SET reply='changed' WHERE item_id=?", (items[0].id,))
    seen.add(run_content_hash(conn, "run1"))
    assert len(seen) == 4


def test_unknown_run(db: Path) -> None:
    with pytest.raises(StoreError, match="nope"):
        run_content_hash(Store(db).connection, "nope")


def test_signoff_records_hash_and_head_and_goes_stale(db: Path) -> None:
    items = write_run(db)
    conn = Store(db).connection
    signed = record_signoff(conn, "run1", "audrey", "approve", "good 好", "re-run quarterly")
    assert signed.content_hash == run_content_hash(conn, "run1")
    entries = list(export(conn))
    assert entries[-1]["action"] == "signoff" and entries[-1]["hash"] == signed.audit_head
    assert entries[-1]["payload"]["content_hash"] == signed.content_hash
    (status,) = signoffs_for(conn, "run1")
    assert not status.stale and status.decision == "approve" and status.comment == "good 好"
    writer = StoreWriter(db)
    writer.put_scores("run1", [score(items[0], 1.0, judge="human")])
    writer.close()
    (status,) = signoffs_for(conn, "run1")
    assert status.stale and status.current_hash != status.content_hash
    assert verify(conn).ok
    assert signoffs_for(conn, "other") == []


def test_signoff_refuses_bad_input_and_keeps_nothing(db: Path) -> None:
    write_run(db)
    conn = Store(db).connection
    with pytest.raises(ValueError, match="decision"):
        record_signoff(conn, "run1", "audrey", "maybe", "", "")  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        record_signoff(conn, "nope", "audrey", "approve", "", "")
    assert not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM signoffs").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0


def test_a_cached_hash_is_reused_only_while_the_run_is_unchanged(db: Path) -> None:
    items = write_run(db)
    conn = Store(db).connection
    real = run_content_hash(conn, "run1")
    assert run_content_hash(conn, "run1", reuse=True) == real
    conn.execute("UPDATE content_hashes SET content_hash='cached' WHERE run_id='run1'")
    assert run_content_hash(conn, "run1", reuse=True) == "cached"
    assert run_content_hash(conn, "run1") == real  # a fresh computation refreshes the cache
    conn.execute("UPDATE content_hashes SET content_hash='cached' WHERE run_id='run1'")
    writer = StoreWriter(db)
    writer.put_scores("run1", [score(items[3], 0.0)])
    writer.close()
    assert run_content_hash(conn, "run1", reuse=True) not in ("cached", real)


def test_signoffs_for_fresh_ignores_the_cache(db: Path) -> None:
    write_run(db)
    conn = Store(db).connection
    record_signoff(conn, "run1", "audrey", "approve", "", "")
    conn.execute("UPDATE content_hashes SET content_hash='forged' WHERE run_id='run1'")
    assert signoffs_for(conn, "run1")[0].stale  # the display trusts the cache ...
    assert not signoffs_for(conn, "run1", fresh=True)[0].stale  # ... a decision does not


def test_a_run_without_a_counter_row_caches_at_version_zero(db: Path) -> None:
    items = write_run(db)
    conn = Store(db).connection
    conn.execute("DELETE FROM web_run_versions")  # a run older than the counters' triggers
    real = run_content_hash(conn, "run1")
    conn.execute("UPDATE content_hashes SET content_hash='cached' WHERE version=0")
    assert run_content_hash(conn, "run1", reuse=True) == "cached"
    writer = StoreWriter(db)
    writer.put_scores("run1", [score(items[1], 0.0)])  # a trigger creates the counter row
    writer.close()
    assert run_content_hash(conn, "run1", reuse=True) not in ("cached", real)
