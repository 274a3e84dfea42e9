"""The command line end to end against a loopback mock server: run, results, export, resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.testing.mock_openai import MockConfig, MockOpenAIServer, ThreadedMockServer

runner = CliRunner()


def run_argv(suite: Path, db: Path, base_url: str, *, run_id: str, concurrency: int) -> list[str]:
    """``medsafe run`` of an MCQ suite against a mock server, as a child process's argv."""
    return [
        sys.executable, "-m", "medsafe.cli", "run", str(suite), "--model", "openai/mock",
        "--base-url", base_url, "--db", str(db), "--run-id", run_id,
        "--concurrency", str(concurrency), "--scorer", "mcq", "--no-progress",
    ]  # fmt: skip


def write_suite(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            row = {
                "id": f"s{i:04d}",
                "question": f"Which option is right for case {i}?",
                "options": {"A": "one", "B": "two", "C": "three", "D": "four"},
                "answer": "ABCD"[i % 4],
                "category": f"ama-{i % 3 + 1}",
                "language": "en",
            }
            handle.write(json.dumps(row) + "\n")
    return path


def cli(*args: str) -> tuple[int, str]:
    """Run the CLI in-process; stdout only when it succeeded, stdout + stderr otherwise."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def test_run_results_export(tmp_path: Path, mock_server: MockOpenAIServer) -> None:
    suite = write_suite(tmp_path / "suite.jsonl", 40)
    db = str(tmp_path / "m.db")
    code, output = cli(
        "run",
        str(suite),
        "--model",
        "openai/mock",
        "--base-url",
        mock_server.base_url,
        "--db",
        db,
        "--run-id",
        "r1",
        "--scorer",
        "mcq",
        "--json",
    )
    assert code == 0, output
    summary = json.loads(output)
    assert summary["n"] == 40 and summary["ok"] == 40 and summary["failed"] == 0
    assert 0.0 <= summary["accuracy"] <= 1.0 and len(summary["ci95"]) == 2
    assert set(summary["by_category"]) == {"ama-1", "ama-2", "ama-3"}
    code, output = cli("results", "r1", "--db", db, "--json")
    assert code == 0 and json.loads(output)["n"] == 40
    code, output = cli("results", "r1", "--db", db)
    assert code == 0 and "overall" in output
    out = tmp_path / "out.jsonl"
    code, output = cli("export", "r1", "--db", db, "--format", "jsonl", "-o", str(out))
    assert code == 0, output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 40 and all(r["extracted"] in "ABCD" for r in rows)
    # resuming a finished run asks nothing; rescoring asks nothing either
    asked = mock_server.state.requests
    code, output = cli(
        "run",
        str(suite),
        "--model",
        "openai/mock",
        "--base-url",
        mock_server.base_url,
        "--db",
        db,
        "--run-id",
        "r1",
        "--json",
    )
    assert code == 0, output
    code, output = cli("run", "--run-id", "r1", "--db", db, "--rescore", "--json")
    assert code == 0, output
    assert json.loads(output)["accuracy"] == summary["accuracy"]
    assert mock_server.state.requests == asked


def test_resume_with_other_model_or_suite_is_refused(
    tmp_path: Path, mock_server: MockOpenAIServer
) -> None:
    suite = write_suite(tmp_path / "suite.jsonl", 5)
    db = str(tmp_path / "m.db")
    base = ["--base-url", mock_server.base_url, "--db", db, "--run-id", "r", "--scorer", "mcq"]
    assert cli("run", str(suite), "--model", "openai/mock", *base)[0] == 0
    code, output = cli("run", str(suite), "--model", "openai/other", *base)
    assert code == 2 and "same model" in output
    other = write_suite(tmp_path / "other.jsonl", 6)
    code, output = cli("run", str(other), "--model", "openai/mock", *base)
    assert code == 2 and "different suite" in output


def test_bad_input_names_file_and_line(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "bad.jsonl", 3)
    with suite.open("a") as handle:
        handle.write("{not json\n")
    code, output = cli(
        "run",
        str(suite),
        "--model",
        "openai/x",
        "--db",
        str(tmp_path / "m.db"),
        "--base-url",
        "http://127.0.0.1:9/v1",
    )
    assert code == 2
    assert "bad.jsonl:4" in output.replace("\n", "")
    with sqlite3.connect(tmp_path / "m.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0


def test_every_call_failed_exits_non_zero(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite.jsonl", 3)
    args = [
        "run",
        str(suite),
        "--model",
        "openai/x",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--db",
        str(tmp_path / "m.db"),
        "--retries",
        "0",
        "--scorer",
        "mcq",
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output
    assert json.loads(result.stdout)["failed"] == 3
    assert "error: every model call failed" in result.stderr


def test_replay_backend_by_id_and_by_prompt(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite.jsonl", 3)
    from medsafe.suites import load_items

    items = load_items(str(suite))
    replay = tmp_path / "answers.jsonl"
    replay.write_text(
        json.dumps({"item_id": "s0000", "response": "Answer: A"})
        + "\n"
        + json.dumps({"prompt": items[1].last_user_text(), "response": "答案：C"})
        + "\n",
        encoding="utf-8",
    )
    db = str(tmp_path / "m.db")
    code, output = cli(
        "run",
        str(suite),
        "--model",
        f"replay/{replay}",
        "--db",
        db,
        "--run-id",
        "rp",
        "--scorer",
        "mcq",
        "--json",
    )
    assert code == 0, output
    out = tmp_path / "rp.jsonl"
    assert cli("export", "rp", "--db", db, "-o", str(out))[0] == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert rows[0]["correct"] is True and rows[1]["extracted"] == "C"
    assert "no replayed response for item 's0002'" in rows[2]["error"]


def test_replay_file_errors_name_line_and_field(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite.jsonl", 1)
    replay = tmp_path / "answers.jsonl"
    replay.write_text('{"item_id": "s0000"}\n', encoding="utf-8")
    code, output = cli(
        "run", str(suite), "--model", f"replay/{replay}", "--db", str(tmp_path / "m.db")
    )
    assert code == 2 and "answers.jsonl:1" in output and "response" in output


def _stored_ids(db: Path, run_id: str) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {
            r[0]
            for r in conn.execute(
                "SELECT item_id FROM transcripts WHERE run_id=? AND status='ok'", (run_id,)
            )
        }


def test_kill_minus_nine_then_resume(tmp_path: Path) -> None:
    n = 160
    suite = write_suite(tmp_path / "suite.jsonl", n)
    db = tmp_path / "kill.db"
    from medsafe.suites import load_items

    prompt_of = {item.id: item.last_user_text() for item in load_items(str(suite))}
    with ThreadedMockServer(MockConfig(latency_s=0.05)) as server:
        argv = run_argv(suite, db, server.base_url, run_id="k", concurrency=4)
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if db.exists() and len(_stored_ids(db, "k")) >= 30:
                    break
            except sqlite3.OperationalError:  # the child is still creating its tables
                pass
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stored = _stored_ids(db, "k")
        assert 30 <= len(stored) < n
        server.state.answered.clear()
        resumed = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert resumed.returncode == 0, resumed.stderr
        asked_again = set(server.state.answered)
    assert not asked_again & {prompt_of[i] for i in stored}
    assert _stored_ids(db, "k") == set(prompt_of)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM transcripts WHERE run_id='k'").fetchone()[0] == n
        assert (
            conn.execute(
                "SELECT COUNT(*) FROM scores WHERE run_id='k' AND scorer='mcq'"
            ).fetchone()[0]
            == n
        )


@pytest.mark.parametrize("spec", ["nokind", "warp/x"])
def test_bad_model_spec(tmp_path: Path, spec: str) -> None:
    suite = write_suite(tmp_path / "suite.jsonl", 1)
    code, output = cli("run", str(suite), "--model", spec, "--db", str(tmp_path / "m.db"))
    assert code == 2 and ("KIND/NAME" in output or "unknown backend" in output)


def test_guardian_train_writes_a_head_usable_by_run(
    tmp_path: Path, mock_server: MockOpenAIServer
) -> None:
    fixture = Path(__file__).parent / "fixtures" / "guardian_small.jsonl"
    head = tmp_path / "head.json"
    code, output = cli("guardian", "train", "--labels", str(fixture), "--out", str(head), "--json")
    assert code == 0, output
    figures = json.loads(output)
    assert figures["n"] > 0 and 0.0 <= figures["accuracy"] <= 1.0
    assert head.is_file()
    suite = tmp_path / "open.jsonl"
    suite.write_text(
        json.dumps({"id": "o1", "prompt": "How should I store insulin?", "category": "ama-1"})
        + "\n",
        encoding="utf-8",
    )
    code, output = cli(
        "run",
        str(suite),
        "--model",
        "openai/mock",
        "--base-url",
        mock_server.base_url,
        "--db",
        str(tmp_path / "m.db"),
        "--scorer",
        f"guardian:head={head}",
        "--json",
    )
    assert code == 0, output
    guardian = json.loads(output)["scorers"]["guardian"]
    assert guardian["n"] == 1 and guardian["failed"] == 0


def test_scorer_option_syntax_errors() -> None:
    code, output = cli("run", "x.jsonl", "--scorer", "guardian:head")
    assert code == 2 and "key=value" in output


def test_rotate_reports_circular_accuracy_and_position_bias(
    tmp_path: Path, mock_server: MockOpenAIServer
) -> None:
    suite = write_suite(tmp_path / "suite.jsonl", 12)
    code, output = cli(
        "run",
        str(suite),
        "--model",
        "openai/mock",
        "--base-url",
        mock_server.base_url,
        "--db",
        str(tmp_path / "m.db"),
        "--rotate",
        "0",
        "--scorer",
        "mcq",
        "--json",
    )
    assert code == 0, output
    summary = json.loads(output)
    assert summary["n"] == 48  # 12 items x 4 rotations
    circular = summary["circular"]
    assert circular["n_base"] == 12 and circular["n_rows"] == 48
    assert circular["circular_accuracy"] <= circular["accuracy"]
    assert set(circular["per_rotation"]) == {"0", "1", "2", "3"}
    # the mock picks a letter from a hash of the prompt, so keys move but picks do not follow
    assert sum(circular["chosen_share"].values()) == pytest.approx(1.0)
    assert set(circular["position_bias"]) <= set("ABCD")


@pytest.mark.slow
@pytest.mark.usefixtures("embedded_runtime")
def test_demo_runs_offline_on_the_embedded_model(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    code, output = cli("demo", "--db", str(db), "--limit", "3", "--max-tokens", "24")
    assert code == 0, output
    assert "overall" in output and "results: store" in output
    rows = db.with_suffix(".jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 3
    assert all(json.loads(r)["model"] == "embedded/smollm2" for r in rows)
