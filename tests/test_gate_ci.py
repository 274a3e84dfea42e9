"""The CI examples of docs/governance.md, exercised: their ``medsafe`` commands run with the
documented policy and model config against the loopback mock server (only the port changes);
the gate resumes its runs on a second call, and a dead endpoint exits 5, never 4."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import xmlschema
from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.gate.outputs import junit_schema
from medsafe.testing.mock_openai import MockOpenAIServer

DOC = Path(__file__).resolve().parents[1] / "docs" / "governance.md"
runner = CliRunner()


def doc_blocks() -> dict[str, str]:
    """Fenced blocks of the doc whose first line is a comment naming a file: ``{file: text}``."""
    text = DOC.read_text("utf-8")
    blocks = {}
    for body in re.findall(r"```(?:toml|yaml)\n(.*?)```", text, flags=re.S):
        first = body.splitlines()[0]
        if first.startswith("# "):
            blocks[first[2:].strip()] = body
    return blocks


def medsafe_commands(workflow: str) -> list[list[str]]:
    """Every ``medsafe ...`` command of a workflow: a GitHub Actions ``run:`` step or a GitLab CI
    ``script`` line."""
    commands = []
    for line in workflow.splitlines():
        text = line.strip().removeprefix("- ").removeprefix("run: ").strip()
        if text.startswith("medsafe "):
            commands.append(shlex.split(text)[1:])
    return commands


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    blocks = doc_blocks()
    (tmp_path / "gate").mkdir()
    (tmp_path / "gate" / "policy.toml").write_text(blocks["gate/policy.toml"], "utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CANDIDATE_API_KEY", "test-key")
    return tmp_path


def _config(workspace: Path, port: int) -> None:
    models = doc_blocks()["gate/models.toml"]
    assert "127.0.0.1:8000" in models
    (workspace / "gate" / "models.toml").write_text(
        models.replace("127.0.0.1:8000", f"127.0.0.1:{port}"), "utf-8"
    )


def test_github_and_gitlab_examples_run_the_same_gate() -> None:
    blocks = doc_blocks()
    github = medsafe_commands(blocks[".github/workflows/safety-gate.yml"])
    gitlab = medsafe_commands(blocks[".gitlab-ci.yml"])
    assert len(github) == 1 and github == gitlab


def test_documented_ci_command_runs_against_the_mock(
    workspace: Path, mock_server: MockOpenAIServer
) -> None:
    _config(workspace, mock_server.port)
    [command] = medsafe_commands(doc_blocks()[".github/workflows/safety-gate.yml"])
    assert command[:2] == ["gate", "gate/policy.toml"] and "--model" in command
    result = runner.invoke(app, command)
    assert result.exit_code in (0, 1, 4), result.output
    asked = mock_server.state.requests
    assert asked > 0
    junit = (workspace / "gate-junit.xml").read_text("utf-8")
    xmlschema.XMLSchema(junit_schema()).validate(junit)
    comment = (workspace / "gate.md").read_text("utf-8")
    assert comment.startswith("### medsafe gate release")
    # the same command again resumes the same runs: no new model call, the same decision
    again = runner.invoke(app, [*command, "--json"])
    assert again.exit_code == result.exit_code
    assert mock_server.state.requests == asked
    decision = json.loads(again.stdout)
    expected = {"pass": 0, "fail": 1, "inconclusive": 4}[decision["outcome"]]
    assert again.exit_code == expected
    assert decision["runs"]["demo"] == "gate-demo-candidate"
    assert [r["metric"] for r in decision["rules"]] == ["accuracy", "guardian.harmful_share"]


def test_a_dead_endpoint_exits_5_not_inconclusive(workspace: Path) -> None:
    _config(workspace, 9)  # the discard port: nothing listens there
    policy = workspace / "gate" / "policy.toml"
    policy.write_text(
        policy.read_text("utf-8").replace('suite = "demo"\n', 'suite = "demo"\nlimit = 3\n', 1),
        "utf-8",
    )
    result = runner.invoke(
        app, ["gate", "gate/policy.toml", "--model", "candidate", "--config", "gate/models.toml"]
    )
    assert result.exit_code == 5, result.output
    assert "every model call failed in: demo (run gate-demo-candidate)" in result.stderr
