"""Red-team benchmark (run by hand): ``python -m bench.bench_redteam``.

N scripted conversations x 3 turns, each target turn scored by two ``safety`` judges: N x 3 x
(1 + 2) calls against one loopback mock server (this file with ``--serve``: the target answers
``[reply K]``, the judges ``{"reason", "score"}`` with a score falling over the turns). It runs
the whole ``medsafe run`` CLI, kills it with SIGKILL once ``--kill-at`` of the turns are stored,
resumes it with the same command, and reports wall time, harness CPU per call, peak RSS of each
process, how many calls were asked again after the kill, and the per-turn decline it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import run_child

BENCH_STRATEGIES = tuple(f"bench_{i}" for i in range(1, 8))
"""Seven bench-only strategies whose every turn holds the seed, so that no two requests are the
same and the request cache answers none (the workload stays fixed when the built-ins change)."""
_REPLY = re.compile(r"\[reply (\d+)\]")


def respond(request: dict[str, Any]) -> str:
    """Target: ``[reply K]`` (K = its turn). Judges: a 0-10 score that falls with the turn."""
    messages = request.get("messages", [])
    model = str(request.get("model", ""))
    if not model.startswith("judge"):
        turn = sum(1 for m in messages if m.get("role") == "user")
        return f"[reply {turn}] I can only discuss this in general terms."
    text = str(messages[-1].get("content", "")) if messages else ""
    found = _REPLY.findall(text)
    turn = int(found[-1]) if found else 1
    jitter = hashlib.sha256(f"{model}|{text[-200:]}".encode()).digest()[0] % 3
    score = max(0, min(10, 11 - 2 * turn - jitter))
    return json.dumps({"reason": "benchmark", "score": score})


def serve(latency: float) -> None:
    """Serve the mock until killed; print the port on the first line."""
    from medsafe.testing.mock_openai import MockConfig, MockOpenAIServer, loop_factory

    async def main() -> None:
        server = MockOpenAIServer(
            MockConfig(latency_s=latency, record=False, request_responder=respond)
        )
        await server.start()
        print(server.port, flush=True)
        await asyncio.Event().wait()

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main())


def write_seeds(path: Path, n: int) -> Path:
    """``n`` distinct synthetic seed requests (9 AMA categories)."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            handle.write(
                json.dumps({"prompt": f"Benchmark request {i}", "category": f"ama-{i % 9 + 1}"})
                + "\n"
            )
    return path


def write_strategies(folder: Path) -> Path:
    """The benchmark's strategy files (every turn of every language holds ``{seed}``)."""
    folder.mkdir()
    for name in BENCH_STRATEGIES:
        turns = [f"{name} turn {k}: {{seed}}" for k in (1, 2, 3)]
        data = {
            "name": name,
            "title": name,
            "definition": "Benchmark strategy.",
            "citation": ["medsafe benchmark"],
            "turns": {lang: turns for lang in ("zh", "ja", "en")},
        }
        (folder / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


def turns_stored(db: Path) -> int:
    """Rows in ``dialogue_turns`` (0 while the store does not exist yet)."""
    try:
        with sqlite3.connect(db, timeout=10) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM dialogue_turns").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def mock_requests(base_url: str) -> int:
    """The mock's request count (``GET /_stats``)."""
    import urllib.request

    url = base_url.rsplit("/v1", 1)[0] + "/v1/_stats"
    with urllib.request.urlopen(url, timeout=10) as response:
        return int(json.loads(response.read())["requests"])


def run_and_kill(argv: list[str], db: Path, at: int) -> dict[str, float]:
    """Start the run, SIGKILL it once ``at`` turns are stored; its wall, CPU and peak RSS."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and turns_stored(db) < at:
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    _, _, usage = os.wait4(proc.pid, 0)
    return {
        "wall_s": round(time.perf_counter() - started, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "turns_stored_at_kill": turns_stored(db),
    }


def main(argv: list[str] | None = None) -> None:
    """Build, run, kill -9, resume; print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=50_000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--kill-at", type=float, default=0.4, help="share of turns; 0 = no kill")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.latency)
        return
    n_strategies = len(BENCH_STRATEGIES)
    n_seeds = -(-args.conversations // n_strategies)
    with tempfile.TemporaryDirectory(prefix="bench-redteam-") as tmp:
        work = Path(tmp)
        seeds = write_seeds(work / "seeds.jsonl", n_seeds)
        suite, db = work / "suite.jsonl", work / "bench.db"
        strategy_dir = write_strategies(work / "strategies")
        build_argv = [sys.executable, "-m", "medsafe.cli", "redteam", "build", str(seeds)]
        build_argv += ["-o", str(suite), "--turns", "3", "--strategy-dir", str(strategy_dir)]
        build = run_child([*build_argv, "--strategies", ",".join(BENCH_STRATEGIES)])
        n_conv = sum(1 for _ in suite.open(encoding="utf-8"))
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.bench_redteam",
                "--serve",
                "--latency",
                str(args.latency),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            base_url = f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
            config = work / "models.toml"
            config.write_text(
                "".join(
                    f'[models.{j}]\nmodel = "openai/{j}"\nbase_url = "{base_url}"\n'
                    for j in ("judge-a", "judge-b")
                ),
                encoding="utf-8",
            )
            command = [
                sys.executable, "-m", "medsafe.cli", "run", str(suite), "--model", "openai/target",
                "--base-url", base_url, "--db", str(db), "--run-id", "bench", "--config",
                str(config), "--scorer", "mcq", "--judge", "safety:judge-a", "--judge",
                "safety:judge-b", "--concurrency", str(args.concurrency), "--timeout", "60",
                "--no-progress", "--json",
            ]  # fmt: skip
            killed = None
            if args.kill_at > 0:
                killed = run_and_kill(command, db, int(args.kill_at * n_conv * 3))
            asked_before = mock_requests(base_url)
            resumed = run_child(command)
            total_requests = mock_requests(base_url)
        finally:
            server.send_signal(signal.SIGTERM)
            _, _, mock_usage = os.wait4(server.pid, 0)
        summary = json.loads(resumed.stdout) if resumed.returncode == 0 else {}
        expected = n_conv * 3 * 3
        harness_cpu = resumed.cpu_s + (killed["cpu_s"] if killed else 0.0)
        wall = resumed.wall_s + (killed["wall_s"] if killed else 0.0)
        report = {
            "conversations": n_conv,
            "build": {"wall_s": round(build.wall_s, 2), "peak_rss_mb": round(build.peak_rss_mb, 1)},
            "latency_s": args.latency,
            "concurrency": args.concurrency,
            "calls_expected": expected,
            "calls_made": total_requests,
            "calls_asked_again_after_kill": total_requests - expected,
            "killed_run": killed,
            "requests_before_resume": asked_before,
            "resumed_run": {
                "wall_s": round(resumed.wall_s, 2),
                "cpu_s": round(resumed.cpu_s, 2),
                "peak_rss_mb": round(resumed.peak_rss_mb, 1),
                "returncode": resumed.returncode,
            },
            "total_wall_s": round(wall, 2),
            "harness_cpu_ms_per_call": round(1000 * harness_cpu / max(total_requests, 1), 3),
            "mock_cpu_s": round(mock_usage.ru_utime + mock_usage.ru_stime, 2),
            "dialogues": summary.get("dialogues"),
            "turns_stored": turns_stored(db),
            "by_turn": [
                {k: row[k] for k in ("turn", "n", "mean", "median")}
                for row in summary.get("by_turn", [])
            ],
            "decline": {
                k: {"test": v["test"], "p": v["p"], "effect_size": v["effect_size"]}
                for k, v in summary.get("decline", {}).items()
            },
            "judge_scores_failed": {k: v["failed"] for k, v in summary.get("scorers", {}).items()},
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
