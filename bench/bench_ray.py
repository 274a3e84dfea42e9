"""Ray executor overhead (run by hand): ``python -m bench.bench_ray [--items N]``.

Runs the whole ``medsafe run`` CLI on an MCQ suite of N items against a loopback mock (fixed
latency, no CPU cost) twice, each time with a fresh store and mock: in one process
(``--executor local``) and on a local Ray instance with ``--workers`` actors
(``--executor ray``). A small run of each (``--startup-items``) measures what does not grow with
N (Python and Ray start-up, scoring and summary), so the per-item figures are net of it:

    overhead per item = ((ray(N) - ray(small)) - (local(N) - local(small))) / (N - small)

CPU is the user+system time of the CLI process and of the descendants it reaped (Ray's GCS,
raylet and workers are its children and are stopped at the end of the run). Prints one JSON line
per point, then a summary line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench.bench_runner import medsafe_run
from bench.common import ensure_bytecode, mock_server, run_child, write_mcq_suite


def measure(
    n: int, executor: str, workers: int, latency: float, concurrency: int, work: Path
) -> dict[str, object]:
    """One point: the CLI run on ``n`` items with ``executor`` (a fresh store and mock)."""
    suite = work / f"suite-{n}.jsonl"
    if not suite.exists():
        write_mcq_suite(suite, n)
    db = work / f"bench-{n}-{executor}.db"
    db.unlink(missing_ok=True)
    with mock_server(latency) as base_url:
        argv = medsafe_run(suite, db, base_url, concurrency)
        argv += ["--executor", executor]
        if executor == "ray":
            argv += ["--workers", str(workers)]
        child = run_child(argv)
    done = json.loads(child.stdout) if child.returncode == 0 else {}
    return {
        "executor": executor,
        "workers": workers if executor == "ray" else 1,
        "items": n,
        "latency_s": latency,
        "concurrency": concurrency,
        "wall_s": round(child.wall_s, 3),
        "items_per_s": round(n / child.wall_s, 1) if child.wall_s else 0.0,
        "cpu_s": round(child.cpu_s, 3),
        "peak_rss_mb": round(child.peak_rss_mb, 1),
        "returncode": child.returncode,
        "ok": done.get("ok"),
    }


def summary(
    points: dict[tuple[str, int], dict[str, object]], n: int, small: int
) -> dict[str, object]:
    """Per-item wall and CPU overhead of Ray over one process, net of the fixed start-up."""

    def net(executor: str, key: str) -> float:
        big, little = points[(executor, n)][key], points[(executor, small)][key]
        assert isinstance(big, float) and isinstance(little, float)
        return big - little

    items = n - small
    ray_wall, local_wall = net("ray", "wall_s"), net("local", "wall_s")
    return {
        "summary": True,
        "items": n,
        "local_items_per_s": round(items / local_wall, 1) if local_wall > 0 else None,
        "ray_items_per_s": round(items / ray_wall, 1) if ray_wall > 0 else None,
        "wall_overhead_ms_per_item": round(1000 * (ray_wall - local_wall) / items, 3),
        "cpu_overhead_ms_per_item": round(
            1000 * (net("ray", "cpu_s") - net("local", "cpu_s")) / items, 3
        ),
        "ray_fixed_wall_s": points[("ray", small)]["wall_s"],
        "local_fixed_wall_s": points[("local", small)]["wall_s"],
    }


def main() -> None:
    """Run the four points and print them with the summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--startup-items", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.01)
    parser.add_argument("--concurrency", type=int, default=256)
    args = parser.parse_args()
    if args.items <= args.startup_items:
        parser.error("--items must be larger than --startup-items")
    ensure_bytecode()
    points: dict[tuple[str, int], dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in (args.startup_items, args.items):
            for executor in ("local", "ray"):
                point = measure(n, executor, args.workers, args.latency, args.concurrency, work)
                points[(executor, n)] = point
                print(json.dumps(point), flush=True)
    print(json.dumps(summary(points, args.items, args.startup_items)), flush=True)


if __name__ == "__main__":
    main()
