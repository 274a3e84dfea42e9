"""The PostgreSQL store: the same numbers as SQLite, copies both ways, many writers at once,
clear errors, and a password never stored or printed.

The store, journal (kill -9) and lease tests also run on both engines (their ``any_db``
fixture); this file holds what is PostgreSQL's own.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from medsafe.results import load_results
from medsafe.store import Store
from medsafe.store.pg import redacted, store_url, translate
from medsafe.testing.mock_openai import MockConfig, ThreadedMockServer
from tests.pg_support import PgServer
from tests.test_cli import cli, run_argv, write_suite
from tests.web_support import browse_store

_VOLATILE = {"created", "updated"}


def _stable(value: Any) -> Any:
    """A results document without the timestamps of when its rows were written."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _results(db: Path, run_id: str) -> Any:
    return _stable(load_results(db, run_id).model_dump(mode="json"))


def test_results_are_the_same_numbers_on_both_engines(tmp_path: Path, pg_url: str) -> None:
    lite, pg = tmp_path / "lite.db", Path(pg_url)
    ids = browse_store(lite)
    assert browse_store(pg) == ids  # written through the same Store and StoreWriter
    for run_id in ids.values():
        assert _results(pg, run_id) == _results(lite, run_id), run_id


def test_db_copy_both_ways_keeps_every_number_and_refuses_a_second_copy(
    tmp_path: Path, pg_url: str
) -> None:
    lite, back = tmp_path / "lite.db", tmp_path / "back.db"
    ids = browse_store(lite)
    code, output = cli("db", "copy", str(lite), pg_url)
    assert code == 0, output
    assert output.count("(same)") == len(ids)
    code, output = cli("db", "copy", pg_url, str(back), "--run", "base")
    assert code == 0, output
    assert _results(back, "base") == _results(lite, "base")
    for run_id in ids.values():
        assert _results(Path(pg_url), run_id) == _results(lite, run_id)
    with Store(pg_url) as store:
        before = store.connection.execute("SELECT COUNT(*) FROM items").fetchone()[0]
        assert store.cached_many(["nothing"]) == {}
    code, output = cli("db", "copy", str(lite), pg_url, "--run", "tuned")
    assert code == 2 and "already holds run 'tuned'" in output
    with Store(pg_url) as store:
        assert store.connection.execute("SELECT COUNT(*) FROM items").fetchone()[0] == before
    code, output = cli("audit", "verify", "--db", pg_url)
    assert code == 0 and "intact" in output, output


def _suite(path: Path, n: int, tag: str) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            row = {"id": f"{tag}{i:04d}", "question": f"{tag}: which option for case {i}?",
                   "options": {"A": "one", "B": "two", "C": "three", "D": "four"},
                   "answer": "ABCD"[i % 4], "category": "ama-1", "language": "en"}  # fmt: skip
            handle.write(json.dumps(row) + "\n")
    return path


def test_two_processes_write_two_runs_into_one_database(tmp_path: Path, pg_url: str) -> None:
    n = 150
    with ThreadedMockServer(MockConfig(latency_s=0.01)) as server:
        procs = [
            subprocess.Popen(
                run_argv(
                    _suite(tmp_path / f"{tag}.jsonl", n, tag),
                    Path(pg_url),
                    server.base_url,
                    run_id=tag,
                    concurrency=8,
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for tag in ("a", "b")
        ]
        outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        assert server.state.requests == 2 * n  # each item asked once, by one process
    with Store(pg_url) as store:
        for tag in ("a", "b"):
            assert store.status_counts(tag) == {"n": n, "ok": n, "failed": 0, "pending": 0}
        scores = store.connection.execute(
            "SELECT run_id, scorer, COUNT(*), COUNT(DISTINCT item_id) FROM scores "
            "WHERE scorer = 'mcq' GROUP BY run_id, scorer"
        ).fetchall()
    assert sorted(scores) == [("a", "mcq", n, n), ("b", "mcq", n, n)]


def test_concurrent_audit_writers_never_fork_the_chain_on_postgresql(pg_url: str) -> None:
    import multiprocessing

    from medsafe.audit.chain import verify
    from tests.test_audit_chain import _writer

    Store(pg_url).close()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(3)
    procs = [ctx.Process(target=_writer, args=(pg_url, who, 60, start)) for who in ("p", "q", "r")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    with Store(pg_url) as store:
        report = verify(store.connection)
        actors = store.connection.execute("SELECT actor FROM audit_log ORDER BY seq").fetchall()
    assert report.ok and report.n == 180
    assert sum(a != b for a, b in itertools.pairwise(actors)) > 2  # interleaved


def test_concurrent_first_opens_migrate_once(pg_url: str) -> None:
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Store(pg_url).close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Store(pg_url) as store:
        assert store.connection.execute("SELECT value FROM meta").fetchall() == [("8",)]


def test_a_password_in_the_url_is_never_stored_or_printed(
    tmp_path: Path, pg_server: PgServer, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)  # the CLI moves the password there
    secret = "s3cret-Pw"
    url = pg_url.replace(f"{pg_server.user}@", f"{pg_server.user}:{secret}@")
    assert redacted(url) == pg_url
    suite = write_suite(tmp_path / "suite.jsonl", 5)
    with ThreadedMockServer(MockConfig()) as server:
        argv = run_argv(suite, Path(url), server.base_url, run_id="p", concurrency=2)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout + done.stderr
    code, output = cli("runs", "--db", url)
    assert code == 0 and secret not in output and "p" in output
    code, output = cli("results", "p", "--db", url, "--json")
    assert code == 0 and secret not in output
    with Store(pg_url) as store:
        rows = store.connection.execute("SELECT spec_json, provenance_json FROM runs").fetchall()
    assert rows and all(secret not in field for row in rows for field in row)


def test_a_store_made_by_a_newer_medsafe_is_refused(pg_url: str) -> None:
    Store(pg_url).close()
    with Store(pg_url) as store:
        store.connection.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    code, output = cli("runs", "--db", pg_url)
    assert code == 2 and "made by a newer medsafe" in output and "v99" in output, output


def test_bad_urls_and_foreign_databases_are_clear_errors(pg_server: PgServer, pg_url: str) -> None:
    code, output = cli("runs", "--db", f"postgresql://nobody@127.0.0.1:{pg_server.port}/absent")
    assert code == 2 and "cannot connect to PostgreSQL" in output and "Traceback" not in output
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE patients (id int)")
    code, output = cli("runs", "--db", pg_url)
    assert code == 2 and "not a medsafe store" in output and "patients" in output, output


def test_the_workbench_runs_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    from tests.web_support import login, make_app

    ids = browse_store(Path(pg_url))
    app = make_app(tmp_path, Path(pg_url))
    client = login(app, "admin")
    page = client.get("/runs")
    assert page.status_code == 200 and "tuned" in page.text
    for url in (
        f"/run?id={ids['dialogue']}",
        f"/run/items?id={ids['base']}&q=consent",
        f"/item?run={ids['dialogue']}&id=o00060",
        "/compare?a=base&b=tuned",
    ):
        page = client.get(url)
        assert page.status_code == 200, (url, page.text[:300])  # fmt: skip


@pytest.mark.parametrize(
    ("sqlite", "postgres"),
    [
        ("SELECT a FROM t WHERE b=? AND c LIKE '%x?'",
         "SELECT a FROM t WHERE b=%s AND c LIKE '%x?'"),
        ("SELECT user FROM dialogue_turns", 'SELECT "user" FROM dialogue_turns'),
        ("CREATE TABLE t (a INTEGER PRIMARY KEY, b REAL, c BLOB) WITHOUT ROWID",
         "CREATE TABLE t (a BIGSERIAL PRIMARY KEY, b DOUBLE PRECISION, c BYTEA)"),
        ("SELECT group_concat(flag, ',') FROM flags WHERE x = 100 % 7",
         "SELECT string_agg(flag, ',') FROM flags WHERE x = 100 %% 7"),
    ],
)  # fmt: skip
def test_translation_of_the_sqlite_dialect(sqlite: str, postgres: str) -> None:
    assert translate(sqlite) == postgres


def test_urls_survive_path_and_lose_their_password() -> None:
    assert store_url(Path("postgresql://u@h:5/db")) == "postgresql://u@h:5/db"
    assert store_url("postgres://u@h/db") == "postgresql://u@h/db"
    assert store_url(Path("results/store.db")) is None
    assert redacted("postgresql://u:p%40ss@h:5/db?sslmode=require") == (
        "postgresql://u@h:5/db?sslmode=require"
    )
