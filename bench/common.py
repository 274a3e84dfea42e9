"""Shared helpers for the hand-run benchmarks: a mock server process, suites, child rusage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def ensure_bytecode() -> None:
    """Compile medsafe's modules, as an installed package has them.

    An editable install keeps no bytecode under ``src/``, and where ``PYTHONDONTWRITEBYTECODE``
    is set (as on this project's machines) every child would compile the package again at
    start-up; a benchmark of the CLI process should not measure that.
    """
    import compileall

    import medsafe

    compileall.compile_dir(str(Path(medsafe.__file__).parent), quiet=1)


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


CHILD_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class ChildRun:
    """One child process: wall time, user+sys CPU, peak RSS, exit status and its output."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_child(
    argv: Sequence[str], env: dict[str, str] | None = None, timeout_s: float = CHILD_TIMEOUT_S
) -> ChildRun:
    """Run a command and reap it with ``os.wait4`` to get *its own* rusage.

    ``RUSAGE_CHILDREN``'s ``ru_maxrss`` is a high-water mark over every child this process ever
    reaped, so a later, smaller run would report an earlier one's peak. ``wait4`` gives this
    child's (and its reaped descendants') CPU and peak RSS alone.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), env={**os.environ, **(env or {})}, stdout=out, stderr=err
        )
        killer = threading.Timer(timeout_s, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        print(stdout[-2000:], stderr[-2000:], file=sys.stderr)
    return ChildRun(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        returncode=proc.returncode,
        stdout=stdout,
        stderr=stderr,
    )
