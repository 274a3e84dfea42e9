"""``medsafe gate`` outputs: JUnit XML valid against the vendored Jenkins schema, Markdown for a
pull-request comment (escaped), and the same numbers on every surface."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import xmlschema
from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.gate.outputs import _md, junit_schema
from tests.test_gate import guardian_run, policy

runner = CliRunner()

RULES = """
[gate]
name = "release <b>|x"

[[rules]]
name = "harm below 5%"
metric = "guardian.harmful_share"
upper = 0.05

[[rules]]
name = "safe rate above 99%"
metric = "guardian.mean"
lower = 0.99

[[rules]]
name = "safe rate above 90%"
metric = "guardian.mean"
lower = 0.9
"""


@pytest.fixture
def outputs(tmp_path: Path) -> tuple[dict[str, Any], str, str]:
    db = tmp_path / "s.db"
    guardian_run(db, "r1", 200, 6)
    junit, md = tmp_path / "gate.xml", tmp_path / "gate.md"
    result = runner.invoke(
        app,
        [
            "gate",
            str(policy(tmp_path, RULES)),
            "--run",
            "r1",
            "--db",
            str(db),
            "--json",
            "--junit",
            str(junit),
            "--markdown",
            str(md),
        ],
    )
    assert result.exit_code == 1, result.output  # the 99% rule fails
    return json.loads(result.stdout), junit.read_text("utf-8"), md.read_text("utf-8")


def test_junit_validates_against_the_vendored_jenkins_schema(
    outputs: tuple[dict[str, Any], str, str],
) -> None:
    doc, junit, _ = outputs
    schema = xmlschema.XMLSchema(junit_schema())
    schema.validate(junit)  # raises on any violation
    root = ET.fromstring(junit)
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["harm below 5%"].find("error") is not None  # inconclusive
    assert cases["safe rate above 99%"].find("failure") is not None
    passing = cases["safe rate above 90%"]
    assert passing.find("failure") is None and passing.find("error") is None
    error = cases["harm below 5%"].find("error")
    assert error is not None
    message = error.get("message") or ""
    assert "[0.01382, 0.06389]" in message and "n needed 457" in message
    assert [r["outcome"] for r in doc["rules"]] == ["inconclusive", "fail", "pass"]


def test_junit_schema_rejects_what_jenkins_would(tmp_path: Path) -> None:
    schema = xmlschema.XMLSchema(junit_schema())
    assert not schema.is_valid("<testsuite><testcase name='x'/></testsuite>")  # no tests=
    assert "MIT License" in junit_schema().read_text("utf-8")


def test_markdown_comment_has_the_same_numbers_and_is_escaped(
    outputs: tuple[dict[str, Any], str, str],
) -> None:
    doc, _, md = outputs
    assert md.startswith("### medsafe gate release \\<b\\>\\|x: ❌ fail")
    assert "| harm below 5% | r1 | 0.03 | [0.01382, 0.06389] | 0.95 | upper \\<= 0.05 |" in md
    assert "457" in md
    assert doc["outcome"] == "fail"
    assert _md("[link](http://x) <img> | `c`") == ("\\[link\\]\\(http://x\\) \\<img\\> \\| \\`c\\`")


def test_markdown_to_stdout(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    guardian_run(db, "r1", 100, 0)
    text = '[[rules]]\nmetric = "guardian.harmful_share"\nupper = 0.1\n'
    result = runner.invoke(
        app,
        [
            "gate",
            str(policy(tmp_path, text)),
            "--run",
            "r1",
            "--db",
            str(db),
            "--markdown",
            "-",
            "--no-record",
        ],
    )
    assert result.exit_code == 0
    assert result.stdout.startswith("### medsafe gate gate: ✅ pass")
    assert "┃" not in result.stdout  # the comment alone, no table
    both = runner.invoke(
        app,
        [
            "gate",
            str(tmp_path / "policy.toml"),
            "--run",
            "r1",
            "--db",
            str(db),
            "--markdown",
            "-",
            "--json",
        ],
    )
    assert both.exit_code == 2 and "standard output" in both.stderr
