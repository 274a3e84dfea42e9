"""Runner throughput benchmark (run by hand): ``python -m bench.bench_runner``.

Against a loopback mock OpenAI-compatible server with fixed latency and no CPU cost, it runs the
whole ``medsafe run`` CLI process on an MCQ suite and reports wall time, harness CPU per 1,000
requests, peak RSS, and the share of the ideal limit N x latency / concurrency it reaches.
``--scale`` also runs 10k and 200k items to show that RSS stays flat. ``--floor`` also runs
``bench.floor_client`` (a bare aiohttp client, nothing stored or scored) on the same suite against
a fresh mock, so medsafe's own overhead is its wall time minus the floor's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench.common import ensure_bytecode, mock_server, run_child, write_mcq_suite


def medsafe_run(
    suite: Path, db: Path, base_url: str, concurrency: int, progress: bool = False
) -> list[str]:
    """The CLI command line under test."""
    return [
        sys.executable,
        "-m",
        "medsafe.cli",
        "run",
        str(suite),
        "--model",
        "openai/mock",
        "--base-url",
        base_url,
        "--db",
        str(db),
        "--concurrency",
        str(concurrency),
        "--scorer",
        "mcq",
        "--progress" if progress else "--no-progress",
        "--json",
        "--timeout",
        "30",
    ]


def floor_run(suite: Path, base_url: str, concurrency: int) -> list[str]:
    """The bare-client command line (``bench.floor_client``)."""
    return [
        sys.executable,
        "-m",
        "bench.floor_client",
        str(suite),
        "--base-url",
        base_url,
        "--concurrency",
        str(concurrency),
    ]


def measure(
    n: int,
    latency: float,
    concurrency: int,
    workdir: Path,
    progress: bool = False,
    floor: bool = False,
) -> dict[str, object]:
    """One benchmark point (a fresh store and mock each time, so nothing comes from a cache)."""
    suite = workdir / f"suite-{n}.jsonl"
    if not suite.exists():
        write_mcq_suite(suite, n)
    db = workdir / f"bench-{n}-{int(progress)}.db"
    db.unlink(missing_ok=True)
    with mock_server(latency) as base_url:
        if floor:
            child = run_child(floor_run(suite, base_url, concurrency))
        else:
            # FORCE_COLOR makes rich draw the live bar into the captured stderr as on a terminal.
            env = {"FORCE_COLOR": "1"} if progress else None
            child = run_child(medsafe_run(suite, db, base_url, concurrency, progress), env)
    limit = n * latency / concurrency
    done = json.loads(child.stdout) if child.returncode == 0 else {}
    return {
        "tool": "floor" if floor else "medsafe",
        "items": n,
        "latency_s": latency,
        "concurrency": concurrency,
        "wall_s": round(child.wall_s, 3),
        "limit_s": round(limit, 3),
        "share_of_limit": round(limit / child.wall_s, 3) if child.wall_s else 0.0,
        "cpu_ms_per_request": round(1000 * child.cpu_s / n, 3),
        "cpu_s_per_1000": round(1000 * child.cpu_s / n, 3),
        "peak_rss_mb": round(child.peak_rss_mb, 1),
        "progress_bar": progress,
        "returncode": child.returncode,
        "completed": done.get("n"),
        "ok": done.get("ok"),
    }


def main() -> None:
    """Run the benchmark and print one JSON line per point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1, help="runs of the main point")
    parser.add_argument("--scale", action="store_true", help="also 10k and 200k items")
    parser.add_argument(
        "--floor", action="store_true", help="also a bare aiohttp client (bench.floor_client)"
    )
    parser.add_argument(
        "--progress", action="store_true", help="also run with the progress bar drawn"
    )
    args = parser.parse_args()
    ensure_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for _ in range(args.repeat):
            point = measure(args.items, args.latency, args.concurrency, work)
            print(json.dumps(point), flush=True)
            if args.floor:
                point = measure(args.items, args.latency, args.concurrency, work, floor=True)
                print(json.dumps(point), flush=True)
        if args.progress:
            point = measure(args.items, args.latency, args.concurrency, work, progress=True)
            print(json.dumps(point), flush=True)
        if args.scale:
            for n in (10_000, 200_000):
                print(json.dumps(measure(n, 0.01, 256, work)), flush=True)


if __name__ == "__main__":
    main()
