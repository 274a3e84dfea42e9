"""Refusals before a run is stored (no default endpoint, bad generation parameters) and what a
run whose every call failed reports (issue: security review)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from medsafe.api import evaluate
from medsafe.cli import app
from medsafe.errors import ConfigError
from medsafe.exits import ExitCode
from medsafe.models.base import BackendOptions
from medsafe.models.openai_compat import PUBLIC_BASE_URL, OpenAICompatBackend
from medsafe.testing.mock_openai import MockOpenAIServer
from tests.test_secrets import stored_runs, write_suite

runner = CliRunner()
LOOPBACK = "http://127.0.0.1:9/v1"


@pytest.fixture(autouse=True)
def _no_base_url_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def run(tmp_path: Path, *args: str) -> tuple[int, str, Path]:
    """``medsafe run SUITE --db DB --scorer mcq ARGS``: exit code, stderr and the store path."""
    db = tmp_path / "m.db"
    suite = str(write_suite(tmp_path / "s.jsonl"))
    result = runner.invoke(app, ["run", suite, "--db", str(db), "--scorer", "mcq", *args])
    return result.exit_code, result.stderr, db


@pytest.mark.parametrize("how", ["raw spec", "config model", "attacker"])
def test_an_openai_model_without_a_base_url_is_refused(
    tmp_path: Path, mock_server: MockOpenAIServer, how: str
) -> None:
    config = tmp_path / "models.toml"
    config.write_text('[models.t]\nmodel = "openai/x"\n', encoding="utf-8")
    args = {
        "raw spec": ["--model", "openai/x"],
        "config model": ["--model", "t", "--config", str(config)],
        "attacker": ["--model", "openai/x", "--base-url", mock_server.base_url, "--attacker"],
    }[how]
    if how == "attacker":
        args.append("openai/red")
    code, stderr, db = run(tmp_path, *args)
    assert code == ExitCode.BAD_INPUT, stderr
    assert "needs a base URL" in stderr
    assert f"--base-url {PUBLIC_BASE_URL}" in stderr
    assert stored_runs(db) == 0
    assert mock_server.state.requests == 0


def test_openai_base_url_env_still_names_the_server(
    tmp_path: Path, mock_server: MockOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", mock_server.base_url)
    code, stderr, _ = run(tmp_path, "--model", "openai/x")
    assert code == ExitCode.OK, stderr
    assert mock_server.state.requests == 2


def test_the_public_endpoint_is_used_only_when_named() -> None:
    backend = OpenAICompatBackend("gpt-4o-mini", BackendOptions(base_url=PUBLIC_BASE_URL))
    assert backend.base_url == PUBLIC_BASE_URL
    with pytest.raises(ConfigError, match="needs a base URL"):
        OpenAICompatBackend("gpt-4o-mini", BackendOptions())


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("--temperature", "nan", "temperature"),
        ("--temperature", "inf", "temperature"),
        ("--temperature", "-5", "temperature"),
        ("--temperature", "2.5", "temperature"),
        ("--top-p", "0", "top_p"),
        ("--top-p", "1.5", "top_p"),
        ("--top-p", "nan", "top_p"),
        ("--max-tokens", "0", "--max-tokens"),
        ("--seed", "1.5", "--seed"),
    ],
)
def test_bad_generation_parameters_exit_2_before_anything_is_stored(
    tmp_path: Path, option: str, value: str, named: str
) -> None:
    code, stderr, db = run(tmp_path, "--model", "openai/x", "--base-url", LOOPBACK, option, value)
    assert code == ExitCode.BAD_INPUT, stderr
    assert named in stderr
    assert not db.exists()


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"temperature": float("nan")}, ConfigError),
        ({"top_p": 0.0}, ConfigError),
        ({"max_tokens": 0}, ConfigError),
        ({"max_tokens": 1.0}, TypeError),
        ({"seed": True}, TypeError),
        ({"seed": 1.5}, TypeError),
    ],
)
def test_evaluate_refuses_bad_generation_parameters(
    tmp_path: Path, params: dict[str, Any], error: type[Exception]
) -> None:
    db = tmp_path / "m.db"
    name = next(iter(params))
    with pytest.raises(error, match=name):
        evaluate(write_suite(tmp_path / "s.jsonl"), "openai/x", base_url=LOOPBACK, db=db, **params)
    assert not db.exists()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_url_prints_its_cause_before_exit_3(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    code, stderr, _ = run(tmp_path, "--model", "openai/x", "--base-url", url, "--retries", "0")
    assert code == ExitCode.ALL_CALLS_FAILED, stderr
    lines = stderr.splitlines()
    causes = [i for i, line in enumerate(lines) if line.startswith("cause: ")]
    final = lines.index("error: every model call failed")
    assert causes and max(causes) < final, stderr
    assert f"connection error to {url}" in lines[causes[0]]
    assert "(2 calls)" in lines[causes[0]]
