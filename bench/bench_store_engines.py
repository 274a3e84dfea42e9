"""SQLite vs PostgreSQL store benchmark (run by hand): ``python -m bench.bench_store_engines``.

Two measurements on each engine, in the same session:

1. *Writer throughput*: N transcripts, each with two scores and a request-cache row, queued to
   one :class:`~medsafe.store.StoreWriter` as fast as possible, until all are committed.
2. *A whole run*: ``medsafe run`` of an N-item MCQ suite against the loopback mock (fixed
   latency, concurrency 64) into a fresh store, and ``medsafe results`` of it.

PostgreSQL is a throw-away cluster on 127.0.0.1 (``tests/pg_support.py``: fsync off, as in the
tests) unless ``--pg URL`` names a database to use (it must be empty).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import create_run, make_mcq, make_spec

from bench.bench_runner import medsafe_run
from bench.common import ensure_bytecode, mock_server, run_child, write_mcq_suite
from medsafe.schema import CallRecord, Message, ModelParams, Score, Transcript, Usage
from medsafe.store import Store, StoreWriter


def _transcript(i: int) -> Transcript:
    call = CallRecord(
        request_hash=f"h{i:08d}", status="ok", text=f"Answer: {'ABCD'[i % 4]}",
        usage=Usage(prompt_tokens=40, completion_tokens=3), latency_s=0.1,
    )  # fmt: skip
    return Transcript(
        run_id="w", item_id=f"q{i:05d}", model="openai/bench", params=ModelParams(),
        messages=(Message(role="user", content=f"question {i}"),
                  Message(role="assistant", content=call.text or "")),
        calls=(call,), status="ok",
    )  # fmt: skip


def writer_throughput(db: Path, n: int) -> float:
    """Rows per second (a transcript and its scores and cache row count as one) through one
    writer into a run of ``n`` items."""
    create_run(db, make_spec("w", "openai/bench"), [make_mcq(i) for i in range(n)])
    writer = StoreWriter(db)
    started = time.perf_counter()
    for i in range(n):
        transcript = _transcript(i)
        writer.put_transcript(transcript)
        writer.put_scores("w", [
            Score(item_id=transcript.item_id, scorer="mcq", scorer_version="1", value=1.0),
            Score(item_id=transcript.item_id, scorer="refusal", scorer_version="1", value=0.0),
        ])  # fmt: skip
    writer.close()
    elapsed = time.perf_counter() - started
    with Store(db) as store:
        assert store.status_counts("w")["ok"] == n
    return n / elapsed


@contextlib.contextmanager
def _postgres(url: str | None) -> Iterator[tuple[str, str]]:
    """(URL of the writer database, URL of the run database)."""
    if url is not None:
        yield url, url
        return
    from tests.pg_support import temporary_server

    with temporary_server() as server:
        yield server.create_database(), server.create_database()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20_000, help="transcripts to write")
    parser.add_argument("--run-items", type=int, default=5_000, help="items of the mock run")
    parser.add_argument("--latency", type=float, default=0.02, help="mock latency (s)")
    parser.add_argument("--pg", help="an empty PostgreSQL database to use instead")
    args = parser.parse_args(argv)
    ensure_bytecode()
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, _postgres(args.pg) as (pg_write, pg_run):
        folder = Path(tmp)
        suite = write_mcq_suite(folder / "suite.jsonl", args.run_items)
        stores: dict[str, tuple[Path | str, Path | str]] = {
            "sqlite": (folder / "w.db", folder / "r.db"),
            "postgresql": (pg_write, pg_run),
        }
        with mock_server(args.latency) as base_url:
            for engine, (write_db, run_db) in stores.items():
                rate = writer_throughput(Path(write_db), args.items)
                child = run_child(
                    [*medsafe_run(suite, Path(run_db), base_url, 64), "--run-id", "bench"]
                )
                if child.returncode != 0:
                    sys.exit(f"{engine}: medsafe run failed")
                results = run_child([sys.executable, "-m", "medsafe.cli", "results", "bench",
                                     "--db", str(run_db), "--json"])  # fmt: skip
                ideal = args.run_items * args.latency / 64
                figures[engine] = {
                    "writer_rows_per_s": round(rate),
                    "run_wall_s": round(child.wall_s, 2),
                    "run_ideal_s": round(ideal, 2),
                    "run_cpu_s": round(child.cpu_s, 2),
                    "run_peak_rss_mb": round(child.peak_rss_mb),
                    "results_wall_s": round(results.wall_s, 2),
                }
                print(engine, json.dumps(figures[engine]), flush=True)
    print(json.dumps({"items": args.items, "run_items": args.run_items, **figures}, indent=2))


if __name__ == "__main__":
    main()
