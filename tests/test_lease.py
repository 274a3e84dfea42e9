"""Two processes on one run: a second live process exits 2 naming the lease's owner, a stale
lease needs --force, a dead owner's lease is taken over, a run releases its lease when it
ends, and default run ids made in the same second differ."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsafe import pipeline
from medsafe.cli import app
from medsafe.store import Store
from medsafe.store.lease import LeaseError, LeaseOwner, acquire, write_lease
from medsafe.store.sqlite import connect
from medsafe.testing.mock_openai import MockConfig, MockOpenAIServer, ThreadedMockServer
from tests.test_cli import run_argv, write_suite

runner = CliRunner()


def _run(db: Path, suite: Path, base_url: str, *extra: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        [
            "run",
            str(suite),
            "--model",
            "openai/mock",
            "--base-url",
            base_url,
            "--db",
            str(db),
            "--run-id",
            "r",
            "--scorer",
            "mcq",
            "--no-progress",
            *extra,
        ],
    )
    return result.exit_code, result.output


def _plant(db: Path, host: str, pid: int, age_s: float) -> None:
    """A lease row on run ``r`` as another process would have written it."""
    Store(db).close()
    conn = connect(db)
    try:
        owner = LeaseOwner(host, pid, "2026-01-02T03:04:05+00:00", time.time() - age_s)
        write_lease(conn, "r", "someone-else", owner)
    finally:
        conn.close()


def _leases(db: Path) -> list[tuple[str, int]]:
    conn = connect(db)
    try:
        return [(str(h), int(p)) for h, p in conn.execute("SELECT host, pid FROM leases")]
    finally:
        conn.close()


def test_a_live_owner_is_refused_naming_it(
    any_db: Path, tmp_path: Path, mock_server: MockOpenAIServer
) -> None:
    db, suite = any_db, write_suite(tmp_path / "suite.jsonl", 4)
    _plant(db, "other-host", 4242, age_s=1.0)
    for extra in ((), ("--force",)):  # a live lease is never taken over
        code, output = _run(db, suite, mock_server.base_url, *extra)
        assert code == 2, output
        flat = " ".join(output.split())
        assert "run 'r'" in flat and "host other-host, pid 4242" in flat
        assert "started 2026-01-02T03:04:05+00:00" in flat
    assert mock_server.state.requests == 0
    assert _leases(db) == [("other-host", 4242)]


def test_a_second_process_on_the_same_run_exits_2(any_db: Path, tmp_path: Path) -> None:
    db, suite = any_db, write_suite(tmp_path / "suite.jsonl", 300)
    with ThreadedMockServer(MockConfig(latency_s=0.05)) as server:
        argv = run_argv(suite, db, server.base_url, run_id="r", concurrency=2)
        first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 60
            while server.state.requests < 5 and time.time() < deadline:
                time.sleep(0.02)
            second = subprocess.run(argv, capture_output=True, text=True, check=False)
        finally:
            first.wait(timeout=120)
    assert second.returncode == 2, second.stderr
    flat = " ".join(second.stderr.split())
    assert "run 'r'" in flat and f"pid {first.pid}" in flat and socket.gethostname() in flat
    assert first.returncode == 0
    assert server.state.requests == 300  # the second process asked nothing
    assert _leases(db) == []


def test_a_stale_lease_needs_force(
    any_db: Path, tmp_path: Path, mock_server: MockOpenAIServer
) -> None:
    db, suite = any_db, write_suite(tmp_path / "suite.jsonl", 4)
    _plant(db, "other-host", 4242, age_s=3600.0)
    code, output = _run(db, suite, mock_server.base_url)
    assert code == 2 and "stale" in output and "--force" in output, output
    assert mock_server.state.requests == 0
    code, output = _run(db, suite, mock_server.base_url, "--force")
    assert code == 0, output
    assert mock_server.state.requests == 4
    assert _leases(db) == []  # released at the end


def test_a_dead_owner_on_this_host_is_taken_over(
    any_db: Path, tmp_path: Path, mock_server: MockOpenAIServer
) -> None:
    db, suite = any_db, write_suite(tmp_path / "suite.jsonl", 4)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _plant(db, socket.gethostname(), gone.pid, age_s=1.0)  # killed a second ago (kill -9)
    code, output = _run(db, suite, mock_server.base_url)
    assert code == 0, output
    assert _leases(db) == []


def test_the_lease_is_released_on_errors_and_heartbeats(any_db: Path, tmp_path: Path) -> None:
    db = any_db
    Store(db).close()
    with pytest.raises(RuntimeError), acquire(db, "r", heartbeat_s=0.05) as lease:
        conn = connect(db)
        before = conn.execute("SELECT heartbeat FROM leases").fetchone()[0]
        time.sleep(0.3)
        after = conn.execute("SELECT heartbeat FROM leases").fetchone()[0]
        conn.close()
        assert after > before and not lease.lost
        with pytest.raises(LeaseError, match=rf"pid {os.getpid()}"):
            acquire(db, "r", force=True)  # this process is alive: never taken over
        raise RuntimeError("boom")
    assert _leases(db) == []


def test_default_run_ids_in_the_same_second_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    class Frozen(datetime):
        @classmethod
        def now(cls, tz: object = None) -> Frozen:
            return cls(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    monkeypatch.setattr(pipeline, "datetime", Frozen)
    first, second = (pipeline.default_run_id("suite", "openai/gpt 4") for _ in range(2))
    assert first != second
    assert re.fullmatch(r"suite-gpt_4-20260102-030405-[0-9a-f]{4}", first), first


def test_runs_reports_a_run_with_a_live_lease_as_running(
    tmp_path: Path, mock_server: MockOpenAIServer
) -> None:
    db, suite = tmp_path / "runs.db", write_suite(tmp_path / "suite.jsonl", 3)
    code, output = _run(db, suite, mock_server.base_url)
    assert code == 0, output

    def status() -> str:
        out = CliRunner().invoke(app, ["runs", "--db", str(db), "--json"])
        return str(json.loads(out.stdout)[0]["status"])

    assert status() == "complete"
    _plant(db, socket.gethostname(), os.getpid(), age_s=1)  # this (live) process holds it
    assert status() == "running"
    _plant(db, socket.gethostname(), os.getpid(), age_s=3600)  # stale: an interrupted owner
    assert status() == "complete"
