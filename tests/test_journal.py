"""The answer journal: a kill -9 repeats only the calls in flight; the journal is folded into
the store on resume (torn lines skipped, stored answers kept) and deleted after a clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from medsafe.schema import CallRecord, Message, ModelParams, Transcript, Usage
from medsafe.store import Store
from medsafe.store.journal import Journal, fold, journal_path
from medsafe.store.sqlite import connect
from medsafe.store.writer import StoreWriter
from medsafe.testing.mock_openai import MockConfig, ThreadedMockServer
from tests.conftest import create_run, make_mcq, make_spec
from tests.test_cli import run_argv, write_suite


def test_kill_minus_nine_repeats_only_the_calls_in_flight(any_db: Path, tmp_path: Path) -> None:
    n, concurrency = 600, 16
    suite = write_suite(tmp_path / "suite.jsonl", n)
    db = any_db
    with ThreadedMockServer(MockConfig(latency_s=0.05)) as server:
        argv = run_argv(suite, db, server.base_url, run_id="k", concurrency=concurrency)
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while len(server.state.answered) < 200 and time.time() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.3)  # requests in flight at the kill are still answered (to nobody)
        first = set(server.state.answered)
        assert 200 <= len(first) < n
        assert journal_path(db, "k").stat().st_size > 0
        server.state.answered.clear()
        resumed = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert resumed.returncode == 0, resumed.stderr
        again = set(server.state.answered) & first
    assert len(again) <= concurrency, len(again)
    assert not journal_path(db, "k").parent.exists()
    with connect(db) as conn:
        ok = conn.execute("SELECT COUNT(*) FROM transcripts WHERE run_id='k' AND status='ok'")
        assert ok.fetchone()[0] == n
        scored = conn.execute("SELECT COUNT(*) FROM scores WHERE run_id='k' AND scorer='mcq'")
        assert scored.fetchone()[0] == n


def _answer(item_id: str, text: str) -> Transcript:
    call = CallRecord(
        request_hash=f"h-{item_id}", status="ok", text=text, usage=Usage(), latency_s=0.1
    )
    return Transcript(
        run_id="r",
        item_id=item_id,
        model="openai/mock",
        params=ModelParams(),
        messages=(Message(role="user", content="q"), Message(role="assistant", content=text)),
        calls=(call,),
        status="ok",
    )


def test_fold_stores_new_answers_skips_torn_lines_and_deletes(any_db: Path, tmp_path: Path) -> None:
    db = any_db
    create_run(db, make_spec("r", "openai/mock"), [make_mcq(i) for i in range(3)])
    writer = StoreWriter(db)
    writer.put_transcript(_answer("q00000", "stored"))
    writer.flush()
    path = journal_path(db, "r")
    journal = Journal(path)
    for item_id in ("q00000", "q00001"):
        journal.append(_answer(item_id, "journal"))
    journal.close()
    with path.open("ab") as handle:
        handle.write(b'{"run_id": "r", "item_id": "q00002", "sta')  # torn by the kill
    with Store(db) as store:
        assert fold(path, store.connection, writer, "r", run_exists=True) == 1
        writer.close()
        answers = {t.item_id: t.response for _, t in store.iter_transcripts("r")}
        assert answers == {"q00000": "stored", "q00001": "journal"}
        assert store.cached("h-q00001") is not None
    assert not path.exists() and not path.parent.exists()


def test_fold_of_an_uncommitted_run_keeps_only_the_cache(any_db: Path, tmp_path: Path) -> None:
    db = any_db
    Store(db).close()
    path = journal_path(db, "new/run")
    assert path.name == "new%2Frun.jsonl"
    journal = Journal(path)
    journal.append(_answer("q0", "paid for").model_copy(update={"run_id": "new/run"}))
    journal.close()
    writer = StoreWriter(db)
    with Store(db) as store:
        assert fold(path, store.connection, writer, "new/run", run_exists=False) == 0
        writer.close()
        cached = store.cached("h-q0")
        assert cached is not None and cached.text == "paid for"
        assert not store.connection.execute("SELECT 1 FROM transcripts").fetchall()
    assert not path.exists()
