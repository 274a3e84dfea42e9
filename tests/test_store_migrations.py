"""Store versions: a 0.1.0 store is migrated on open, newer stores are refused, a failed
migration leaves the file as it was, and a read-only store is only read."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from medsafe.errors import StoreError
from medsafe.export import iter_records
from medsafe.store import Store, migrations
from medsafe.store.calibrations import latest_calibrations, save_calibration
from medsafe.store.migrations import CURRENT_VERSION, Migration, migrate
from medsafe.store.queries import item_scores
from medsafe.store.schema_audit import AUDIT_TABLES
from medsafe.store.schema_authoring import AUTHORING_TABLES
from medsafe.store.schema_gate import GATE_TABLES
from medsafe.store.schema_review import REVIEW_TABLES
from medsafe.store.schema_sql import CALIBRATIONS_DDL, MEDSAFE_TABLES
from medsafe.store.schema_web import WEB_TABLES

V3_TABLES = (
    MEDSAFE_TABLES - AUDIT_TABLES - REVIEW_TABLES - WEB_TABLES - GATE_TABLES - AUTHORING_TABLES
)
"""The tables of a v3 store (medsafe 0.2.0 before the governance tables)."""

FIXTURE = Path(__file__).parent / "fixtures" / "store-0.1.0.db"
"""Made by medsafe 0.1.0: run ``r010`` (3 MCQ + 2 open items; mcq and harmfulness:judge-a)
and one calibration of harmfulness:judge-a (see fixtures/README.md)."""


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    """A writable copy of the 0.1.0 store."""
    path = tmp_path / "old.db"
    shutil.copyfile(FIXTURE, path)
    return path


def _inspect(path: Path) -> tuple[int, dict[str, str], frozenset[str]]:
    """(user_version, meta, table names) read with a plain connection."""
    conn = sqlite3.connect(path)
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        tables = frozenset(str(name) for (name,) in rows)
    finally:
        conn.close()
    return version, meta, tables


def _schema(path: Path) -> set[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        return {(str(name), " ".join(str(sql).split())) for name, sql in rows}
    finally:
        conn.close()


def test_the_fixture_is_a_010_store() -> None:
    assert _inspect(FIXTURE) == (0, {"schema_version": "1"}, V3_TABLES - {"leases"})
    assert FIXTURE.stat().st_size < 200_000


def test_010_store_is_migrated_and_reads(old_store: Path) -> None:
    with Store(old_store) as store:
        record = store.require_run("r010")
        assert record.spec.model == "openai/target" and record.n_items == 5
        assert [s.name for s in record.spec.scorers] == ["mcq", "harmfulness"]
        pairs = list(store.iter_transcripts("r010"))
        assert [item.id for item, _ in pairs] == ["mcq-1", "mcq-2", "mcq-3", "open-1", "open-2"]
        assert all(t.status == "ok" and t.response for _, t in pairs)
        mcq = {s.scorer: s for s in store.scores_for("r010", "mcq-1")}
        assert mcq["mcq"].label == "correct" and mcq["mcq"].value == 1.0
        harm = store.scores_for("r010", "open-1")
        assert [(s.scorer, s.judge, s.value) for s in harm] == [("harmfulness", "judge-a", 2.0)]
        stored = item_scores(store, "r010", ["mcq-2", "open-2"])
        assert {(s.scorer, s.judge, s.turn) for s in stored["mcq-2"]} == {
            ("mcq", None, None),
            ("mcq.partial", None, None),
        }
        assert [(s.judge, s.label) for s in stored["open-2"]] == [("judge-a", "refusal")]
        calibrations = latest_calibrations(store.connection)
        assert list(calibrations) == [("harmfulness", "judge-a")]
        records = list(iter_records(store, "r010"))
        assert [r["correct"] for r in records[:3]] == [True, False, False]
        assert records[0]["scores"][0]["judge"] == "" and records[0]["scores"][0]["turn"] is None
    assert _inspect(old_store) == (
        CURRENT_VERSION,
        {"schema_version": str(CURRENT_VERSION)},
        MEDSAFE_TABLES,
    )


def test_fresh_and_migrated_stores_have_the_same_schema(old_store: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    Store(fresh).close()
    Store(old_store).close()
    assert _inspect(fresh) == (
        CURRENT_VERSION,
        {"schema_version": str(CURRENT_VERSION)},
        MEDSAFE_TABLES,
    )
    assert _schema(fresh) == _schema(old_store)


def test_v2_store_gains_the_leases_table(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate_to(conn, path, 2) == 0
    finally:
        conn.close()
    assert _inspect(path) == (2, {"schema_version": "2"}, V3_TABLES - {"leases"})
    Store(path).close()
    version = str(CURRENT_VERSION)
    assert _inspect(path) == (CURRENT_VERSION, {"schema_version": version}, MEDSAFE_TABLES)
    assert CURRENT_VERSION == 8


def migrate_to(conn: sqlite3.Connection, path: Path, version: int) -> int:
    """Migrate with only the first ``version`` steps (a store of an older medsafe)."""
    steps = migrations.MIGRATIONS
    migrations.MIGRATIONS = steps[:version]
    try:
        return migrate(conn, path)
    finally:
        migrations.MIGRATIONS = steps


def test_current_store_is_only_read(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        changes = conn.total_changes
        assert migrate(conn, path) == CURRENT_VERSION
        assert conn.total_changes == changes and not conn.in_transaction
    finally:
        conn.close()


def test_store_from_a_newer_medsafe_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {CURRENT_VERSION + 1}")
    conn.close()
    newer = rf"store schema v{CURRENT_VERSION + 1} was made by a newer medsafe"
    with pytest.raises(
        StoreError, match=rf"new\.db: {newer}.*reads up to v{CURRENT_VERSION}.*upgrade"
    ):
        Store(path)


def test_meta_version_without_user_version_is_refused(old_store: Path) -> None:
    conn = sqlite3.connect(old_store)
    conn.execute("UPDATE meta SET value='7'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"old\.db: unknown store schema .*'7'"):
        Store(old_store)
    assert _inspect(old_store)[:2] == (0, {"schema_version": "7"})


def test_failed_migration_leaves_the_file_unchanged(
    old_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = sqlite3.connect(old_store)
    conn.execute("DROP TABLE calibrations")  # a 0.1.0 store that was never calibrated
    conn.close()
    before = (_inspect(old_store), old_store.read_bytes())

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("step exploded")

    steps = (*migrations.MIGRATIONS, Migration(CURRENT_VERSION + 1, broken))
    monkeypatch.setattr(migrations, "MIGRATIONS", steps)
    pattern = rf"old\.db: migrating the store from v1 to v{CURRENT_VERSION + 1} failed .*"
    with pytest.raises(StoreError, match=pattern + "step exploded.*file is unchanged"):
        Store(old_store)
    assert "calibrations" not in before[0][2]
    assert (_inspect(old_store), old_store.read_bytes()) == before
    monkeypatch.undo()
    with Store(old_store) as store:
        assert store.get_run("r010") is not None
    assert _inspect(old_store)[0] == CURRENT_VERSION


def test_read_only_store_needing_a_migration_says_permission_denied(old_store: Path) -> None:
    conn = sqlite3.connect(f"file:{old_store}?mode=ro", uri=True, isolation_level=None)
    try:
        pattern = rf"old\.db: store schema v1, this medsafe needs v{CURRENT_VERSION}.*permission"
        with pytest.raises(StoreError, match=pattern + " denied"):
            migrate(conn, old_store)
        assert not conn.in_transaction
    finally:
        conn.close()
    assert _inspect(old_store)[0] == 0


def test_read_only_current_store_opens_for_reading(old_store: Path) -> None:
    Store(old_store).close()
    conn = sqlite3.connect(f"file:{old_store}?mode=ro", uri=True, isolation_level=None)
    try:
        assert migrate(conn, old_store) == CURRENT_VERSION
    finally:
        conn.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_read_only_files_through_store(old_store: Path, tmp_path: Path) -> None:
    current = tmp_path / "current.db"
    shutil.copyfile(old_store, current)
    Store(current).close()
    old_store.chmod(0o444)
    current.chmod(0o444)
    with Store(current) as store:
        assert store.get_run("r010") is not None
    with pytest.raises(StoreError, match=r"old\.db: store schema v1.*permission denied"):
        Store(old_store)
    tmp_path.chmod(0o555)  # WAL needs current.db-shm beside the file, even to read
    try:
        with pytest.raises(StoreError, match=r"current\.db: cannot read.*permission denied"):
            Store(current)
    finally:
        tmp_path.chmod(0o755)


def test_unreadable_store_says_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What SQLite reports for a WAL store in a folder this user cannot write."""

    def unreadable(conn: sqlite3.Connection, path: Path | str) -> int:
        exc = sqlite3.OperationalError("attempt to write a readonly database")
        exc.sqlite_errorcode = 1544  # SQLITE_READONLY_DIRECTORY
        raise exc

    monkeypatch.setattr("medsafe.store.sqlite.migrate", unreadable)
    with pytest.raises(StoreError, match=r"s\.db: cannot read the store: permission denied"):
        Store(tmp_path / "s.db")


def test_sqlite_file_of_something_else_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE patients (id)")
    conn.close()
    with pytest.raises(StoreError, match=r"other\.db: not a medsafe store.*patients"):
        Store(path)
    assert _schema(path) == {("patients", "CREATE TABLE patients (id)")}


def test_calibrations_only_file_of_010_becomes_a_store(tmp_path: Path) -> None:
    """0.1.0's ``calibrate --db NEW`` made a file holding only the calibrations table."""
    path = tmp_path / "cal.db"
    conn = sqlite3.connect(path)
    conn.executescript(CALIBRATIONS_DDL)
    conn.execute("INSERT INTO calibrations VALUES ('guardian', '', '1', 't0', 'sha', '{}')")
    conn.commit()
    conn.close()
    with Store(path) as store:
        assert list(latest_calibrations(store.connection)) == [("guardian", "")]
    assert _inspect(path)[2] == MEDSAFE_TABLES


def test_save_calibration_migrates_the_store(old_store: Path) -> None:
    report = {"labels_sha256": "abc", "accuracy": 0.5}
    created = save_calibration(old_store, "guardian", "", "2", report)
    with Store(old_store) as store:
        latest = latest_calibrations(store.connection)
    assert latest[("guardian", "")].created == created
    assert latest[("guardian", "")].report == report
    assert ("harmfulness", "judge-a") in latest
    assert _inspect(old_store)[0] == CURRENT_VERSION
