"""CLI housekeeping: exit codes, the shared error printer, ``--version``, ``runs``, help texts."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

import medsafe
from medsafe.cli import app, run_status
from medsafe.exits import ExitCode, fail
from medsafe.schema import CallRecord, Message, ModelParams, Transcript
from medsafe.store import Store, StoreWriter
from tests.conftest import create_run, make_mcq, make_spec

runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def test_exit_codes() -> None:
    assert [(c.name, int(c)) for c in ExitCode] == [
        ("OK", 0),
        ("BAD_INPUT", 2),
        ("ALL_CALLS_FAILED", 3),
        ("GATE_FAIL", 1),
        ("GATE_INCONCLUSIVE", 4),
        ("GATE_CALLS_FAILED", 5),
    ]


def test_fail_prints_literally_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    exit_ = fail(ValueError("trial[v2].jsonl: id [/b] and [bold]x[/bold]"))
    assert isinstance(exit_, typer.Exit) and exit_.exit_code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: trial[v2].jsonl: id [/b] and [bold]x[/bold]\n"
    assert fail("every call", ExitCode.ALL_CALLS_FAILED).exit_code == 3


@pytest.mark.parametrize(
    ("args", "literal"),
    [
        (
            (
                "run",
                "trial[v2].jsonl",
                "--model",
                "openai/x",
                "--db",
                "{tmp}/m.db",
                "--base-url",
                "http://127.0.0.1:9/v1",
            ),
            "trial[v2]",
        ),
        (("results", "r[/b]", "--db", "{tmp}/no[v2].db"), "no[v2].db: no such store"),
        (("runs", "--db", "{tmp}/no[v2].db"), "no[v2].db: no such store"),
        (("export", "r", "-o", "x", "--db", "{tmp}/m.db", "--format", "x[b]"), "not 'x[b]'"),
        (("calibrate", "--scorer", "guardian", "--labels", "{tmp}/l[v2].jsonl"), "l[v2].jsonl"),
        (("compare", "a", "b", "--adjust", "x[/b]"), "not 'x[/b]'"),
        (("report", "a", "--adjust", "x[/b]"), "not 'x[/b]'"),
        (("redteam", "build", "{tmp}/seeds[v2].txt", "-o", "{tmp}/o.jsonl"), "seeds[v2].txt"),
    ],
)
def test_every_cli_prints_errors_literally(
    tmp_path: Path, args: tuple[str, ...], literal: str
) -> None:
    result = invoke(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    (error,) = (line for line in result.stderr.splitlines() if line.startswith("error: "))
    assert literal in error


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"medsafe {medsafe.__version__}\n"
    assert medsafe.__version__ == version("medsafe")


@pytest.mark.parametrize(
    ("args", "bracketed"),
    [
        (("run", "--help"), "[models.NAME]"),
        (("calibrate", "--help"), "[models.NAME]"),
        (("redteam", "discover", "--help"), "[models.NAME]"),
    ],
)
def test_help_shows_square_brackets(args: tuple[str, ...], bracketed: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 0
    assert bracketed in result.stdout


def test_help_does_not_load_heavy_libraries() -> None:
    """The sub-CLIs are imported with ``medsafe.cli``; none may pull in the heavy libraries."""
    heavy = ("numpy", "scipy", "matplotlib", "pyarrow", "weasyprint", "sklearn", "aiohttp")
    code = f"import sys, medsafe.cli; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


# --- medsafe runs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ok", "failed", "status"),
    [(3, 0, "complete"), (0, 3, "failed"), (1, 1, "partial"), (0, 0, "partial"), (2, 1, "partial")],
)
def test_run_status(ok: int, failed: int, status: str) -> None:
    counts = {"n": 3, "ok": ok, "failed": failed, "pending": 3 - ok - failed}
    assert run_status(counts) == status


def _transcript(run_id: str, item_id: str, ok: bool) -> Transcript:
    status = "ok" if ok else "failed"
    return Transcript(
        run_id=run_id,
        item_id=item_id,
        model="openai/x",
        params=ModelParams(),
        messages=(Message(role="user", content="q"),),
        calls=(CallRecord(request_hash=f"{run_id}/{item_id}", status=status),),
        status=status,
        error=None if ok else "boom",
    )


@pytest.fixture
def store_with_runs(db: Path) -> Path:
    """Runs ``done`` (all ok), ``dead`` (all failed), ``half[v2]`` (one ok, one failed, one
    pending) and ``new`` (nothing asked yet)."""
    answers: dict[str, tuple[bool, ...]] = {
        "done": (True, True, True),
        "dead": (False, False, False),
        "half[v2]": (True, False),
        "new": (),
    }
    for run_id in answers:
        create_run(db, make_spec(run_id, f"openai/{run_id}"), [make_mcq(i) for i in range(3)])
    writer = StoreWriter(db)
    for run_id, oks in answers.items():
        for i, ok in enumerate(oks):
            writer.put_transcript(_transcript(run_id, make_mcq(i).id, ok))
    writer.close()
    return db


def test_runs_json(store_with_runs: Path) -> None:
    result = invoke("runs", "--db", str(store_with_runs), "--json")
    assert result.exit_code == 0, result.output
    rows = {r["run_id"]: r for r in json.loads(result.stdout)}
    assert {k: r["status"] for k, r in rows.items()} == {
        "done": "complete",
        "dead": "failed",
        "half[v2]": "partial",
        "new": "partial",
    }
    half = rows["half[v2]"]
    assert (half["model"], half["suite"], half["n"]) == ("openai/half[v2]", "unit", 3)
    assert (half["ok"], half["failed"], half["pending"]) == (1, 1, 1)
    assert half["created"].startswith("20")


def test_runs_table_prints_ids_literally(store_with_runs: Path) -> None:
    result = invoke("runs", "--db", str(store_with_runs))
    assert result.exit_code == 0, result.output
    for text in ("half[v2]", "openai/half[v2]", "complete", "failed", "partial", "unit"):
        assert text in result.stdout
    for header in ("run_id", "model", "suite", "n", "status", "created"):
        assert header in result.stdout


def test_runs_on_an_empty_store_and_on_a_non_store(tmp_path: Path, db: Path) -> None:
    Store(db).close()
    result = invoke("runs", "--db", str(db), "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    result = invoke("runs", "--db", str(junk))
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "not a medsafe store" in result.stderr
