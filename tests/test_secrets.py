"""Credentials never reach a run spec, a stored error or the terminal (issue: security review)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.exits import ExitCode
from medsafe.redact import has_credentials, redact
from medsafe.testing.mock_openai import MockConfig, MockOpenAIServer, ThreadedMockServer

runner = CliRunner()
SECRET = "SECRET-9f3a"


def write_suite(path: Path, n: int = 2) -> Path:
    rows = (
        {"id": f"q{i}", "question": f"Case {i}?", "options": {"A": "a", "B": "b"}, "answer": "A"}
        for i in range(n)
    )
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def stored_runs(db: Path) -> int:
    """How many runs the store holds (0 when it was never created)."""
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://user:SECRET-9f3a@host/v1", "http://***@host/v1"),
        ("https://SECRET-9f3a@host:8443/v1/chat", "https://***@host:8443/v1/chat"),
        ("postgresql://user:SECRET-9f3a@db.example:5432/medsafe", "postgresql://***@db.example"),
        ("https://host/v1?api_key=SECRET-9f3a&x=1", "?api_key=***&x=1"),
        ("GET /v1?key=SECRET-9f3a", "key=***"),
        ("token=SECRET-9f3a; expired", "token=***; expired"),
        ("Authorization: Bearer SECRET-9f3a", "Authorization: Bearer ***"),
        ('{"error": {"api_key": "SECRET-9f3a"}}', '"api_key": "***"'),
    ],
)
def test_redact_masks_each_form(text: str, shown: str) -> None:
    redacted = redact(text)
    assert SECRET not in redacted
    assert shown in redacted


def test_redact_keeps_text_without_secrets() -> None:
    text = "connection error to http://127.0.0.1:9/v1: monkey=3, keyboard"
    assert redact(text) == text
    assert not has_credentials("http://127.0.0.1:9/v1")
    assert has_credentials("http://u:p@127.0.0.1:9/v1")
    assert has_credentials("http://127.0.0.1:9/v1?api_key=x")


def config_file(tmp_path: Path, role: str) -> Path:
    """A config whose model ``m`` (used as ``role``) has a key in its base URL."""
    path = tmp_path / "models.toml"
    path.write_text(
        f'[models.m]\nmodel = "openai/{role}"\nbase_url = "http://user:{SECRET}@127.0.0.1:9/v1"\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("where", ["--base-url", "OPENAI_BASE_URL", "target", "judge", "attacker"])
def test_a_url_with_credentials_is_refused_and_nothing_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    db = tmp_path / "m.db"
    url = f"http://user:{SECRET}@127.0.0.1:9/v1"
    args = ["run", str(write_suite(tmp_path / "s.jsonl")), "--db", str(db), "--scorer", "mcq"]
    if where == "--base-url":
        args += ["--model", "openai/x", "--base-url", url]
    elif where == "OPENAI_BASE_URL":
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        args += ["--model", "openai/x"]
    else:
        config = config_file(tmp_path, where)
        target = "m" if where == "target" else "openai/x"
        args += ["--model", target, "--base-url", "http://127.0.0.1:9/v1", "--config", str(config)]
        args += {
            "target": [],
            "judge": ["--judge", "harmfulness:m"],
            "attacker": ["--attacker", "m"],
        }[where]
    result = runner.invoke(app, args)
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert SECRET not in result.output
    assert "http://***@127.0.0.1:9/v1" in result.stderr
    assert "OPENAI_API_KEY" in result.stderr
    if where == "OPENAI_BASE_URL":
        assert "OPENAI_BASE_URL" in result.stderr
    if where in ("target", "judge", "attacker"):
        assert "models.m.base_url" in result.stderr
    assert stored_runs(db) == 0
    assert not db.exists() or SECRET.encode() not in db.read_bytes()


class LeakyServer(MockOpenAIServer):
    """Answers every completion with HTTP 401 whose body echoes a key and an ``api_key=``."""

    async def _route(self, method: str, path: str, body: bytes) -> tuple[int, Any, list[str]]:
        self.state.requests += 1
        message = f"invalid api_key={SECRET} (Incorrect API key provided: sk-env-{SECRET})"
        return 401, {"error": {"message": message}}, []


def test_an_http_error_body_is_stored_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", f"sk-env-{SECRET}")
    threaded = ThreadedMockServer(MockConfig())
    threaded.server = LeakyServer(MockConfig())
    db = tmp_path / "m.db"
    with threaded as server:
        suite = str(write_suite(tmp_path / "s.jsonl"))
        options = ["--base-url", server.base_url, "--db", str(db), "--retries", "0"]
        result = runner.invoke(
            app, ["run", suite, "--model", "openai/x", "--scorer", "mcq", *options]
        )
    assert result.exit_code == ExitCode.ALL_CALLS_FAILED, result.output
    with sqlite3.connect(db) as conn:
        errors = [row[0] for row in conn.execute("SELECT error FROM transcripts")]
    assert len(errors) == 2
    assert all(e.startswith("HTTP 401") and "api_key=***" in e for e in errors), errors
    assert SECRET not in db.read_bytes().decode("latin-1")
    assert SECRET not in result.output
