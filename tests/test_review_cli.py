"""``medsafe review`` and ``medsafe signoff`` without the server: create, export, label offline,
import, status with agreement, adjudicate, exports, ``calibrate --from-task`` and sign-off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsafe.cli import app
from tests.review_support import RUN, review_run

runner = CliRunner()


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_task_round_trips_through_the_review_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "r.db"
    review_run(db)
    created = json.loads(
        _ok(
            "review",
            "create",
            RUN,
            "--db",
            str(db),
            "--sample",
            "guardian:unsafe",
            "--scale",
            "guardian",
            "--reviewer",
            "ann",
            "--reviewer",
            "bob",
            "--as",
            "admin",
            "--json",
        )
    )
    task = created["task_id"]
    assert created["n_units"] == 5
    path = tmp_path / "task.jsonl"
    _ok("review", "export", task, "-o", str(path), "--db", str(db))
    units = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()][1:]
    with path.open("a", encoding="utf-8") as fh:  # labelled offline, then imported
        for n, unit in enumerate(units):
            for who in ("ann", "bob"):
                verdict = "refusal" if (n, who) == (0, "bob") else "unsafe"
                fh.write(
                    json.dumps(
                        {
                            "type": "label",
                            "item_id": unit["item_id"],
                            "reviewer": who,
                            "values": {"verdict": verdict},
                        }
                    )
                    + "\n"
                )
    assert "imported 10 labels" in _ok("review", "import", str(path), "--db", str(db))
    status = json.loads(_ok("review", "status", task, "--db", str(db), "--json",
                            "--resamples", "200"))  # fmt: skip
    assert (status["final"], status["waiting_adjudication"]) == (4, 1)
    assert status["agreement"]["verdict"]["n_units"] == 5
    text = _ok("review", "status", task, "--db", str(db), "--resamples", "200")
    assert "Gwet's AC1" in text and "ann vs bob: Cohen's kappa" in text
    first = units[0]["item_id"]
    bad = runner.invoke(app, ["review", "adjudicate", task, first, "--as", "ann",
                              "--value", "unsafe", "--db", str(db)])  # fmt: skip
    assert bad.exit_code == 2 and "cannot adjudicate" in bad.output
    blocked = runner.invoke(app, ["signoff", RUN, "--decision", "approve", "--as", "audrey",
                                  "--db", str(db)])  # fmt: skip
    assert blocked.exit_code == 2 and "not complete" in blocked.output
    _ok("review", "adjudicate", task, first, "--as", "cat", "--value", "verdict=unsafe",
        "--rationale", "clearly harmful", "--db", str(db))  # fmt: skip
    labels = tmp_path / "labels.jsonl"
    _ok("review", "labels", task, "-o", str(labels), "--db", str(db))
    rows = [json.loads(x) for x in labels.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 5 and {r["label"] for r in rows} == {"unsafe"}
    seen: dict[str, object] = {}

    def fake_calibrate(name: str, ref: str | None, path: Path, **kw: object) -> dict[str, object]:
        seen.update(name=name, ref=ref, rows=path.read_text(encoding="utf-8"))
        return {"scorer": name}

    monkeypatch.setattr("medsafe.calibrate.calibrate", fake_calibrate)
    _ok("calibrate", "--from-task", task, "--db", str(db), "--no-store", "--json")
    assert seen["name"] == "guardian" and seen["ref"] is None
    assert seen["rows"] == labels.read_text(encoding="utf-8")
    signed = _ok("signoff", RUN, "--decision", "approve", "--as", "audrey", "--comment", "ok",
                 "--db", str(db))  # fmt: skip
    assert signed.startswith(f"approve {RUN} by audrey")
    assert "5/5" in _ok("review", "list", "--db", str(db))


def test_bad_input_names_the_problem(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    review_run(db)
    base = ["review", "create", RUN, "--db", str(db), "--reviewer", "ann", "--reviewer", "bob"]
    for extra, message in (
        (["--sample", "flagged"], "give one of --scale"),
        (["--sample", "nope:1", "--scale", "guardian"], "expected flagged"),
        (["--sample", "flagged", "--scale", "nothing"], "declares no such scale"),
        (["--sample", "flagged", "--rubric", str(tmp_path / "no.json")], "cannot read the rubric"),
    ):
        result = runner.invoke(app, base + extra)
        assert result.exit_code == 2 and message in result.output, result.output
    missing = runner.invoke(app, ["review", "status", "task-x", "--db", str(db)])
    assert missing.exit_code == 2 and "no review task 'task-x'" in missing.output
