"""medsafe vs Inspect AI on the runner benchmark's workload (run by hand).

    .venv/bin/python -m bench.bench_inspect [--items 2000] [--latency 0.02] [--concurrency 64]

Both tools answer the same N-item MCQ suite (``bench.common.write_mcq_suite``) against the same
loopback mock OpenAI-compatible server (a fresh one per run, fixed latency, no CPU cost), each as
one child process: medsafe runs ``medsafe run`` exactly as ``bench.bench_runner`` does; Inspect
runs ``inspect eval bench/inspect_task.py`` with ``--max-connections`` = concurrency. For each run
it prints one JSON line (wall time, the ideal limit N x latency / concurrency and the share of it
reached, harness CPU per request, peak RSS, and how many items completed), then a final line with
the throughput ratio medsafe/Inspect (items per second) and the CPU-per-request ratio.

Inspect lives in its own virtualenv so that it cannot disturb medsafe's::

    python3 -m venv .venv-inspect && .venv-inspect/bin/pip install inspect-ai openai
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.bench_runner import medsafe_run
from bench.common import ChildRun, ensure_bytecode, mock_server, run_child, write_mcq_suite

REPO = Path(__file__).resolve().parents[1]
TASK_FILE = Path(__file__).resolve().with_name("inspect_task.py")
DEFAULT_INSPECT_PYTHON = ".venv-inspect/bin/python"
INSTALL_HINT = """\
Inspect AI's interpreter {path} is missing or cannot import inspect_ai.
Create the separate virtualenv (PyPI only) from the repository root, then run again:

    python3 -m venv .venv-inspect
    .venv-inspect/bin/pip install inspect-ai openai

or point --inspect-python at another interpreter that has inspect-ai and openai installed."""


def point(tool: str, n: int, latency: float, concurrency: int, run: ChildRun) -> dict[str, Any]:
    """The fields of ``bench.bench_runner.measure`` for one run, plus the tool's name."""
    limit = n * latency / concurrency
    return {
        "tool": tool,
        "items": n,
        "latency_s": latency,
        "concurrency": concurrency,
        "wall_s": round(run.wall_s, 3),
        "limit_s": round(limit, 3),
        "share_of_limit": round(limit / run.wall_s, 3) if run.wall_s else 0.0,
        "items_per_s": round(n / run.wall_s, 1) if run.wall_s else 0.0,
        "cpu_ms_per_request": round(1000 * run.cpu_s / n, 3),
        "peak_rss_mb": round(run.peak_rss_mb, 1),
        "returncode": run.returncode,
    }


def measure_medsafe(
    suite: Path, n: int, latency: float, concurrency: int, workdir: Path, tag: str
) -> dict[str, Any]:
    """``medsafe run`` on the suite (a fresh store, so nothing comes from the cache)."""
    db = workdir / f"medsafe-{tag}.db"
    with mock_server(latency) as base_url:
        run = run_child(medsafe_run(suite, db, base_url, concurrency))
    result = point("medsafe", n, latency, concurrency, run)
    try:
        summary = json.loads(run.stdout)
    except json.JSONDecodeError:
        summary = {}
    result["completed"] = summary.get("n")
    result["ok"] = summary.get("ok")
    result["failed"] = summary.get("failed")
    result["accuracy"] = summary.get("accuracy")
    return result


def inspect_argv(
    python: str,
    suite: Path,
    base_url: str,
    concurrency: int,
    log_dir: Path,
    solver: str,
    extra: Sequence[str] = (),
) -> list[str]:
    """The ``inspect eval`` command line under test.

    ``-M responses_api=false``: Inspect treats an unknown OpenAI model name such as ``mock`` as
    a current frontier model and sends it to the Responses API (``POST /v1/responses``), which
    the mock does not serve; an OpenAI-compatible server speaks chat completions.
    The task is named as ``FILE@TASK`` since Inspect refuses absolute paths without ``@``.
    """
    return [
        python,
        "-m",
        "inspect_ai",
        "eval",
        f"{TASK_FILE}@mcq_bench",
        "-T",
        f"suite={suite}",
        "-T",
        f"solver={solver}",
        "--model",
        "openai/mock",
        "-M",
        "responses_api=false",
        "--model-base-url",
        base_url,
        "--max-connections",
        str(concurrency),
        "--log-dir",
        str(log_dir),
        "--display",
        "none",
        *extra,
    ]


def offline_env(workdir: Path) -> dict[str, str]:
    """Inspect's environment: a dummy key, and nothing that could wait on the network.

    Nothing but 127.0.0.1 is reachable here and name lookups fail at once, so a stray download
    fails fast instead of hanging; these variables also keep the hub clients and proxies out, and
    point tiktoken (used only for token counting, which this task never does) at an empty cache.
    """
    cache = workdir / "tiktoken-cache"
    cache.mkdir(exist_ok=True)
    return {
        "OPENAI_API_KEY": "dummy",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "NO_PROXY": "*",
        "no_proxy": "*",
        "TIKTOKEN_CACHE_DIR": str(cache),
        "INSPECT_DISPLAY": "none",
    }


def read_inspect_log(python: str, log_dir: Path) -> dict[str, Any]:
    """Status, sample counts and accuracy from the run's eval log header."""
    logs = sorted(log_dir.glob("*.eval")) + sorted(log_dir.glob("*.json"))
    if len(logs) != 1:
        return {"status": f"{len(logs)} logs in {log_dir}"}
    dump = subprocess.run(
        [python, "-m", "inspect_ai", "log", "dump", "--header-only", str(logs[0])],
        capture_output=True,
        text=True,
        check=False,
    )
    if dump.returncode != 0:
        return {"status": f"log dump failed: {dump.stderr.strip()[-300:]}"}
    header = json.loads(dump.stdout)
    results = header.get("results") or {}
    accuracy = None
    for score in results.get("scores") or []:
        metric = (score.get("metrics") or {}).get("accuracy")
        if metric is not None:
            accuracy = metric.get("value")
            break
    error = header.get("error") or {}
    return {
        "status": header.get("status"),
        "total": results.get("total_samples"),
        "completed": results.get("completed_samples"),
        "accuracy": accuracy,
        "error": str(error.get("message", ""))[:300] or None,
    }


def measure_inspect(
    python: str,
    suite: Path,
    n: int,
    latency: float,
    concurrency: int,
    workdir: Path,
    tag: str,
    solver: str,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """``inspect eval`` of the same suite against a fresh mock server."""
    log_dir = workdir / f"inspect-logs-{tag}"
    with mock_server(latency) as base_url:
        argv = inspect_argv(python, suite, base_url, concurrency, log_dir, solver, extra)
        run = run_child(argv, offline_env(workdir))
    result = point("inspect_ai", n, latency, concurrency, run)
    log = read_inspect_log(python, log_dir)
    result["completed"] = log.get("completed")
    result["status"] = log.get("status")
    result["accuracy"] = log.get("accuracy")
    if extra:
        result["inspect_extra"] = list(extra)
    if log.get("error"):
        result["error"] = log["error"]
    return result


def check_inspect(python: str) -> str | None:
    """The Inspect AI version, or None when ``python`` cannot import inspect_ai."""
    if not Path(python).exists():
        return None
    probe = subprocess.run(
        [python, "-c", "import inspect_ai, openai; print(inspect_ai.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def complete(result: dict[str, Any]) -> bool:
    """Did the run finish every item (exit 0, N completed, and no failure)?"""
    if result["returncode"] != 0 or result.get("completed") != result["items"]:
        return False
    if result["tool"] == "medsafe":
        return bool(result.get("ok") == result["items"])
    return bool(result.get("status") == "success")


def summary(medsafe: list[dict[str, Any]], inspect: list[dict[str, Any]]) -> dict[str, Any]:
    """Ratios of the medians over the repeats."""
    m_rate = round(statistics.median(r["items_per_s"] for r in medsafe), 1)
    i_rate = round(statistics.median(r["items_per_s"] for r in inspect), 1)
    m_cpu = round(statistics.median(r["cpu_ms_per_request"] for r in medsafe), 3)
    i_cpu = round(statistics.median(r["cpu_ms_per_request"] for r in inspect), 3)
    return {
        "summary": "medsafe vs inspect_ai (medians over repeats)",
        "items": medsafe[0]["items"],
        "latency_s": medsafe[0]["latency_s"],
        "concurrency": medsafe[0]["concurrency"],
        "repeats": len(medsafe),
        "medsafe_items_per_s": m_rate,
        "inspect_items_per_s": i_rate,
        "throughput_ratio_medsafe_over_inspect": round(m_rate / i_rate, 2) if i_rate else None,
        "medsafe_cpu_ms_per_request": m_cpu,
        "inspect_cpu_ms_per_request": i_cpu,
        "cpu_per_request_ratio_inspect_over_medsafe": round(i_cpu / m_cpu, 2) if m_cpu else None,
        "all_complete": all(complete(r) for r in medsafe + inspect),
    }


def main(argv: list[str] | None = None) -> int:
    """Run both tools (interleaved, ``--repeat`` times) and print one JSON line per run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tool (interleaved)")
    parser.add_argument(
        "--inspect-python",
        default=DEFAULT_INSPECT_PYTHON,
        help="interpreter with inspect-ai installed (relative paths: from the repository root)",
    )
    parser.add_argument(
        "--inspect-solver",
        choices=("generate", "multiple_choice"),
        default="generate",
        help="generate() + match() on medsafe's prompt, or Inspect's multiple_choice() + choice()",
    )
    parser.add_argument(
        "--inspect-extra",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for inspect eval (repeatable), e.g. --inspect-extra=--no-log-realtime",
    )
    args = parser.parse_args(argv)
    ensure_bytecode()
    python = Path(args.inspect_python)
    if not python.is_absolute():
        python = REPO / python
    # Keep the venv's bin/python path as given (not resolved): it is what selects the venv.
    version = check_inspect(str(python))
    if version is None:
        print(INSTALL_HINT.format(path=python), file=sys.stderr)
        return 2
    print(json.dumps({"inspect_ai_version": version, "python": sys.version.split()[0]}))
    medsafe: list[dict[str, Any]] = []
    inspect: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-inspect-") as tmp:
        work = Path(tmp)
        suite = write_mcq_suite(work / f"suite-{args.items}.jsonl", args.items)
        for i in range(args.repeat):
            m = measure_medsafe(suite, args.items, args.latency, args.concurrency, work, str(i))
            print(json.dumps(m), flush=True)
            medsafe.append(m)
            p = measure_inspect(
                str(python),
                suite,
                args.items,
                args.latency,
                args.concurrency,
                work,
                str(i),
                args.inspect_solver,
                args.inspect_extra,
            )
            print(json.dumps(p), flush=True)
            inspect.append(p)
    final = summary(medsafe, inspect)
    print(json.dumps(final), flush=True)
    return 0 if final["all_complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
