"""Shared helpers for the hand-run benchmarks: a mock server process, suites, child rusage."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@contextmanager
def mock_server(latency_s: float, *extra: str) -> Iterator[str]:
    """Start ``medsafe.testing.mock_openai`` in its own process; yield its base URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medsafe.testing.mock_openai",
            "--latency",
            str(latency_s),
            "--no-record",
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip())
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


def write_mcq_suite(path: Path, n: int) -> Path:
    """A canonical-JSONL MCQ suite of ``n`` items (four options, varied answers)."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            row = {
                "id": f"b{i:07d}",
                "question": f"Benchmark question {i}: which option is correct?",
                "options": {
                    "A": f"alpha {i}",
                    "B": f"beta {i}",
                    "C": f"gamma {i}",
                    "D": f"delta {i}",
                },
                "answer": "ABCD"[i % 4],
                "category": f"ama-{i % 9 + 1}",
                "language": "en",
            }
            handle.write(json.dumps(row) + "\n")
    return path


@dataclass(frozen=True)
class ChildRun:
    """Wall time, CPU seconds and peak RSS of one child process."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int


def run_child(argv: Sequence[str], env: dict[str, str] | None = None) -> ChildRun:
    """Run a command; measure its wall time, user+sys CPU and peak RSS (Linux ru_maxrss)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        list(argv), env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return ChildRun(wall, cpu, after.ru_maxrss / 1024, proc.returncode)
