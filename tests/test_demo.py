"""``medsafe demo``: the bundled demo suite, its red-team dialogues, plain progress lines, and
(slow) the whole demo on the embedded model."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from medsafe.cli import DEMO_STRATEGIES, DEMO_TURNS, _demo_items
from medsafe.runner.progress import Counters, live_progress, plain_line
from medsafe.suites import bundled_suites, load_items

MCQ_KEYS = {"id", "question", "options", "answer", "category", "language", "source", "license"}
OPEN_KEYS = {"id", "prompt", "category", "language", "reference", "metadata", "source", "license"}


def _records() -> list[dict[str, Any]]:
    text = resources.files("medsafe").joinpath("suites", "data", "demo.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_demo_suite_is_bundled_small_english_and_canonical() -> None:
    assert "demo" in bundled_suites()
    records = _records()
    assert 20 <= len(records) <= 30
    assert len({r["id"] for r in records}) == len(records)
    for record in records:
        assert set(record) == (MCQ_KEYS if "options" in record else OPEN_KEYS), record["id"]
        assert record["language"] == "en"
        assert record["license"] == "CC-BY-4.0"
    mcq = [r for r in records if "options" in r]
    intents = Counter(r["metadata"]["intent"] for r in records if "prompt" in r)
    assert len(mcq) >= 5 and intents["harmful"] >= 5 and intents["benign"] >= 5
    # correct letters balanced, so a model that always picks one letter cannot look good
    answers = Counter(r["answer"] for r in mcq)
    assert max(answers.values()) - min(answers.values()) <= 1 and len(answers) >= 2
    items = load_items("demo")
    assert len(items) == len(records) and {i.suite for i in items} == {"demo"}


def test_demo_items_add_scripted_redteam_dialogues() -> None:
    items = _demo_items()
    dialogues = [i for i in items if i.kind == "dialogue"]
    assert len(items) == len(_records()) + len(dialogues)
    assert len(dialogues) == len(DEMO_STRATEGIES) and 2 <= len(dialogues) <= 3
    assert {i.strategy for i in dialogues} == set(DEMO_STRATEGIES)
    for item in dialogues:
        assert item.suite == "demo" and item.language == "en"
        assert [m.role for m in item.messages] == ["user"] * DEMO_TURNS


def _drive(console: Console, *, enabled: bool, seconds: float) -> Counters:
    counters = Counters(total=4)

    async def body() -> None:
        async with live_progress(
            "generate", counters, enabled=enabled, console=console, interval_s=0.02
        ):
            for _ in range(4):
                await asyncio.sleep(seconds / 4)
                counters.done += 1

    asyncio.run(body())
    return counters


def test_progress_prints_plain_lines_when_not_a_terminal() -> None:
    buffer = io.StringIO()
    _drive(Console(file=buffer, force_terminal=False, width=200), enabled=True, seconds=0.2)
    lines = buffer.getvalue().splitlines()
    assert len(lines) >= 2
    assert all(line.startswith("generate: ") and "items/s" in line for line in lines)
    assert lines[-1].startswith("generate: 4/4 (100%)")
    assert "\x1b" not in buffer.getvalue()  # no bar, no escape codes in a log


def test_progress_plain_is_quiet_for_a_short_phase_and_when_disabled() -> None:
    quick, off = io.StringIO(), io.StringIO()
    _drive(Console(file=quick, force_terminal=False), enabled=True, seconds=0.0)
    _drive(Console(file=off, force_terminal=False), enabled=False, seconds=0.2)
    assert quick.getvalue() == "" and off.getvalue() == ""


def test_plain_line_names_failures_and_cache_hits() -> None:
    counters = Counters(total=0, done=3, failed=1, cached=2)
    line = plain_line("score guardian", counters)
    assert line.startswith("score guardian: 3/? ")
    assert line.endswith(", cached 2, failed 1")


@pytest.mark.slow
@pytest.mark.usefixtures("embedded_runtime")
def test_demo_end_to_end_writes_and_names_the_report(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    proc = subprocess.run(
        [sys.executable, "-m", "medsafe.cli", "demo", "--db", str(db), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = db.with_suffix(".html")
    assert report.is_file() and report.stat().st_size > 10_000
    out = " ".join(proc.stdout.split())  # rich may wrap long lines
    assert f"HTML report: {report}" in out
    assert "~/.cache/medsafe/llama-wheels" in " ".join(proc.stderr.split())
    assert "generate: " not in proc.stderr  # --no-progress
    assert "per turn: guardian" in out and "overall" in out and "circular accuracy" in out
    assert "next commands to try:" in out
    for command in ("--json", "medsafe show", "medsafe report", "medsafe compare", "medsafe runs"):
        assert command in out, command
    rows = [json.loads(r) for r in db.with_suffix(".jsonl").read_text("utf-8").splitlines()]
    kinds = Counter(r["kind"] for r in rows)
    assert kinds["dialogue"] == len(DEMO_STRATEGIES) and kinds["open"] >= 10
    assert all(r["model"] == "embedded/smollm2" and r["status"] == "ok" for r in rows)
