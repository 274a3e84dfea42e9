"""Workbench benchmark (run by hand): ``python -m bench.bench_web [--items N] [--runs R]``.

Builds a store with R small runs (200 items each, default 100) and one run of N items
(default 200,000; bench_report's synthetic mix), materialises every run's results once (the
big run's computation is timed: the cost the first view after a change pays), starts
``medsafe serve`` on 127.0.0.1 in a child process and measures over loopback HTTP:

- the run page, the runs list, the item list (first page, a deep keyset page, a text filter)
  and transcript pages of the big run: time to first byte and total, median / p95 / max;
- label submission with 20 concurrent reviewers (one client each, one request in flight per
  reviewer) on review tasks of the big run, when the review routes exist: back to back (the
  server saturated: latency is mostly queueing) and paced (each reviewer pauses 0.5-1.5 s per
  unit, a very fast human); p50 / p95 / max and throughput.

Prints one JSON object. Every figure is a wall-clock time on this machine (say which).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.bench_report import build_run
from medsafe.store.sqlite import Store
from medsafe.web.auth import add_user
from medsafe.web.results_cache import results_for

PASSWORD = "bench password"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "median_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * p95, 1),
        "max_ms": round(1000 * ordered[-1], 1),
    }


def _login(client: httpx.Client, user: str) -> None:
    page = client.get("/login")
    token = _CSRF.search(page.text)
    assert token is not None
    response = client.post(
        "/login", data={"username": user, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert response.status_code == 303, response.text[:200]


def _csrf(client: httpx.Client) -> str:
    match = _CSRF.search(client.get("/account").text)
    assert match is not None
    return match.group(1)


def _timed(client: httpx.Client, url: str) -> tuple[float, float, int]:
    """(time to first byte, total, status) of one GET."""
    started = time.perf_counter()
    with client.stream("GET", url) as response:
        first = None
        for _chunk in response.iter_bytes():
            if first is None:
                first = time.perf_counter() - started
        total = time.perf_counter() - started
        return (first if first is not None else total), total, response.status_code


def _pages(client: httpx.Client, urls: list[str], repeat: int) -> dict[str, Any]:
    for url in urls[:2]:
        _timed(client, url)  # warm the server's imports and templates
    ttfb, total = [], []
    for _ in range(repeat):
        for url in urls:
            first, whole, status = _timed(client, url)
            assert status == 200, (url, status)
            ttfb.append(first)
            total.append(whole)
    return {"ttfb": _summary(ttfb), "total": _summary(total)}


async def _reviewer(
    base: str, user: str, task_id: str, positions: list[int], field: str, key: str, think: float
) -> list[float]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        page = await client.get("/login")
        token = _CSRF.search(page.text)
        assert token is not None
        response = await client.post(
            "/login", data={"username": user, "password": PASSWORD, "csrf_token": token.group(1)}
        )
        assert response.status_code == 303
        match = _CSRF.search((await client.get("/account")).text)
        assert match is not None
        csrf = match.group(1)
        out = []
        pause = random.Random(user)
        for position in positions:
            if think:  # reading the unit: uniform in [think/2, 3*think/2]
                await asyncio.sleep(think * (0.5 + pause.random()))
            started = time.perf_counter()
            response = await client.post(
                f"/review/task/{task_id}/unit/{position}",
                data={"csrf_token": csrf, f"field.{field}": key, "rationale": "bench"},
            )
            out.append(time.perf_counter() - started)
            assert response.status_code == 303, (response.status_code, response.text[:300])
        return out


def _labels(
    base: str, db: Path, reviewers: list[str], units: int, think: float, seed: int
) -> dict[str, Any] | None:
    """Label submission with ``len(reviewers)`` concurrent reviewers, each pausing ``think``
    seconds on average before each label (0: back to back, the server saturated); None
    without the review routes."""
    try:
        from medsafe.review.tasks import assigned_units, get_task, unit_ids
    except ImportError:
        return None
    with httpx.Client(base_url=base, timeout=120) as admin:
        _login(admin, "admin")
        csrf = _csrf(admin)
        response = admin.post(
            "/review/new",
            data={"csrf_token": csrf, "run_id": "big", "labels": "guardian",
                  "sample": f"stratified:{units}", "k": "2", "seed": str(seed),
                  "reviewers": reviewers},
        )  # fmt: skip
        if response.status_code != 303:
            return {"error": f"task creation answered {response.status_code}"}
        task_id = response.headers["location"].rsplit("/", 1)[-1]
    with Store(db) as store:
        conn = store.connection
        task = get_task(conn, task_id)
        order = {u: n for n, u in enumerate(unit_ids(conn, task_id), start=1)}
        work = {r: [order[u] for u in assigned_units(conn, task_id, r)] for r in reviewers}
    field = task.label_schema.fields[0]

    async def everyone() -> list[list[float]]:
        return await asyncio.gather(
            *(
                _reviewer(base, r, task_id, work[r], field.name, field.choices[0].key, think)
                for r in reviewers
            )
        )

    started = time.perf_counter()
    per_reviewer = asyncio.run(everyone())
    wall = time.perf_counter() - started
    samples = [s for one in per_reviewer for s in one]
    return {
        "think_s": think,
        "task_units": len(order),
        "reviewers": len(reviewers),
        "labels": len(samples),
        **_summary(samples),
        "labels_per_s": round(len(samples) / wall, 1),
    }


_TRANSCRIPTS = """
UPDATE transcripts SET transcript_json = json_object(
    'run_id', transcripts.run_id, 'item_id', transcripts.item_id, 'model', 'bench/model',
    'params', json('{}'), 'status', transcripts.status, 'error', transcripts.error,
    'messages', json_array(
        json_object('role', 'user', 'content',
            (SELECT COALESCE(json_extract(i.item_json, '$.messages[0].content'),
                             json_extract(i.item_json, '$.question'))
             FROM items i WHERE i.run_id = transcripts.run_id AND i.item_id = transcripts.item_id)),
        json_object('role', 'assistant', 'content', COALESCE(transcripts.response, ''))))
WHERE run_id = ?
"""
"""bench_report's transcripts hold only ids (its report never reads them): give each the
conversation a real run stores (prompt and answer), which the transcript page shows."""


def _real_transcripts(db: Path, run_id: str) -> None:
    with Store(db) as store:
        store.connection.execute("BEGIN")
        store.connection.execute(_TRANSCRIPTS, (run_id,))
        store.connection.execute("COMMIT")


def build(db: Path, items: int, runs: int) -> dict[str, float]:
    """The store: ``runs`` small runs, the big one, and the users."""
    started = time.perf_counter()
    build_run(db, "big", items, skill=0.7, seed=1)
    _real_transcripts(db, "big")
    for i in range(runs):
        build_run(db, f"small-{i:03d}", 200, skill=0.5 + i / 400, seed=100 + i)
        _real_transcripts(db, f"small-{i:03d}")
    built = time.perf_counter() - started
    with Store(db) as store:
        add_user(store.connection, "admin", PASSWORD, ["admin"], actor="bench")
        for i in range(20):
            add_user(store.connection, f"rev{i:02d}", PASSWORD, ["reviewer"], actor="bench")
    return {"build_s": round(built, 1)}


def materialise(db: Path) -> dict[str, float]:
    """Every run's results, computed now unless current (the big run's time is the cost the
    first view after a change pays)."""
    with Store(db) as store:
        runs = [r for (r,) in store.connection.execute("SELECT run_id FROM runs")]
    started = time.perf_counter()
    results_for(db, "big")
    big = time.perf_counter() - started
    started = time.perf_counter()
    for run_id in runs:
        results_for(db, run_id)
    return {
        "materialise_big_s": round(big, 2),
        "materialise_others_total_s": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    """Build, serve, measure; print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--units", type=int, default=1000, help="saturated task's units")
    parser.add_argument("--paced-units", type=int, default=200, help="paced task's units")
    parser.add_argument(
        "--think", type=float, default=1.0, help="paced reviewers' mean pause (s) per unit"
    )
    parser.add_argument("--db", type=Path, default=None, help="reuse (or keep) this store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "web.db"
        result: dict[str, Any] = {"items": args.items, "runs": args.runs + 1,
                                  "cpus": os.cpu_count()}  # fmt: skip
        if not db.exists():
            result.update(build(db, args.items, args.runs))
        result.update(materialise(db))
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "medsafe.cli", "serve", "--db", str(db), "--port", str(port)],
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{base}/login", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("medsafe serve did not start") from None
                    time.sleep(0.2)
            with httpx.Client(base_url=base, timeout=60) as client:
                _login(client, "admin")
                ids = [f"b{i:07d}" for i in range(0, args.items, max(1, args.items // 50))]
                result["run_page"] = _pages(client, ["/run?id=big"], args.repeat)
                result["runs_list"] = _pages(client, ["/runs"], max(3, args.repeat // 4))
                result["transcript_page"] = _pages(
                    client, [f"/item?run=big&id={i}" for i in ids], max(1, args.repeat // 10)
                )
                deep = max(0, args.items - 1000)
                result["items_first_page"] = _pages(client, ["/run/items?id=big"], args.repeat)
                result["items_deep_page"] = _pages(
                    client, [f"/run/items?id=big&after={deep}"], args.repeat
                )
                result["items_filtered"] = _pages(
                    client,
                    ["/run/items?id=big&language=zh&metric=guardian&label=unsafe"],
                    max(3, args.repeat // 4),
                )
            reviewers = [f"rev{i:02d}" for i in range(20)]
            result["label_submission_saturated"] = _labels(
                base, db, reviewers, args.units, 0.0, seed=2
            )
            result["label_submission_paced"] = _labels(
                base, db, reviewers, args.paced_units, args.think, seed=3
            )
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
