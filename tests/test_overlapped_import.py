"""A new run starts asking while its suite is still read; bad input still stores nothing of it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medsafe.errors import SuiteError
from medsafe.models.base import BackendOptions, create_backend
from medsafe.pipeline import RunOptions, run_evaluation
from medsafe.runner.generate import SuiteImport, generate
from medsafe.schema import Item, ScorerSpec
from medsafe.store import Store
from medsafe.testing.mock_openai import MockOpenAIServer
from tests.conftest import create_run, make_mcq, make_spec


def _write_suite(path: Path, n: int, bad_last_line: bool = False) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            row = {
                "id": f"i{i:05d}",
                "question": f"Question {i}?",
                "options": {"A": "yes", "B": "no"},
                "answer": "AB"[i % 2],
                "category": "ama-1",
                "language": "en",
            }
            handle.write(json.dumps(row) + "\n")
        if bad_last_line:
            broken = {"id": "broken", "question": "?", "options": {"A": "x"}, "answer": "Z"}
            handle.write(json.dumps(broken) + "\n")
    return path


def _options(suite: Path, db: Path, run_id: str, server: MockOpenAIServer) -> RunOptions:
    return RunOptions(
        suite=str(suite),
        model="openai/mock",
        base_url=server.base_url,
        db=db,
        run_id=run_id,
        concurrency=8,
        scorers=(ScorerSpec(name="mcq"),),
    )


def _counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("runs", "items", "transcripts", "scores", "cache")
        }
    finally:
        conn.close()


def test_overlapped_run_asks_each_item_once_and_stores_the_suite_hash(
    tmp_path: Path, mock_server: MockOpenAIServer
) -> None:
    suite = _write_suite(tmp_path / "suite.jsonl", 700)  # far beyond the first window (8 x 8)
    db = tmp_path / "store.db"
    outcome = run_evaluation(_options(suite, db, "overlap", mock_server))
    assert (
        outcome.results.model_dump(mode="json")["n"]
        == outcome.results.model_dump(mode="json")["ok"]
        == 700
    )
    assert mock_server.state.requests == 700  # nothing asked twice, nothing skipped
    with Store(db) as store:
        stored = store.require_run("overlap")
    # The same items imported the plain way hash the same.
    items = list(Store(db).iter_items("overlap"))
    other = create_run(tmp_path / "other.db", make_spec("plain", "openai/mock"), items)
    assert stored.spec.suite_hash == other.suite_hash == outcome.spec.suite_hash != ""
    assert stored.n_items == 700


def test_bad_line_at_the_end_stores_nothing_of_the_run(
    tmp_path: Path, mock_server: MockOpenAIServer
) -> None:
    suite = _write_suite(tmp_path / "suite.jsonl", 600, bad_last_line=True)
    db = tmp_path / "store.db"
    with pytest.raises(SuiteError) as caught:
        run_evaluation(_options(suite, db, "bad", mock_server))
    message = str(caught.value)
    assert "suite.jsonl" in message and "601" in message and "answer" in message
    counts = _counts(db)
    assert counts["runs"] == counts["items"] == counts["transcripts"] == counts["scores"] == 0
    assert counts["cache"] <= mock_server.state.requests


def _slow_then_bad(good: list[Item], slow: list[Item], where: Path) -> Iterator[Item]:
    yield from good
    for item in slow:  # each item takes longer than a reading slice: the loop gets turns
        time.sleep(0.01)
        yield item
    raise SuiteError("made-up bad line", path=where, line=len(good) + len(slow) + 1)


def test_answers_received_before_the_error_stay_in_the_cache_only(
    db: Path, mock_server: MockOpenAIServer
) -> None:
    spec = make_spec("rolled-back", "openai/mock", mock_server.base_url, concurrency=64)
    good = [make_mcq(i) for i in range(64)]  # one request each, all sent in the first turns
    slow = [make_mcq(i) for i in range(64, 124)]
    backend = create_backend(spec.model, BackendOptions(base_url=mock_server.base_url))

    async def go() -> None:
        with Store(db) as store:
            suite = SuiteImport(_slow_then_bad(good, slow, db), store.begin_import(spec, {}))
            try:
                await generate(spec, db, backend, suite=suite)
            finally:
                await backend.aclose()

    with pytest.raises(SuiteError, match="made-up bad line"):
        asyncio.run(go())
    counts = _counts(db)
    assert counts["runs"] == counts["items"] == counts["transcripts"] == counts["scores"] == 0
    # The first 64 requests were answered during the 0.6 s the import took (later ones may
    # still have been in flight); a corrected suite will find those answers in the cache.
    assert 64 <= counts["cache"] <= mock_server.state.requests


def test_iter_items_after_an_index(db: Path) -> None:
    create_run(db, make_spec("r", "openai/x"), [make_mcq(i) for i in range(10)])
    with Store(db) as store:
        assert [i.id for i in store.iter_items("r", after=6)] == ["q00007", "q00008", "q00009"]
        assert [i.id for i in store.iter_items("r", after=6, chunk=1)] == [
            "q00007",
            "q00008",
            "q00009",
        ]
