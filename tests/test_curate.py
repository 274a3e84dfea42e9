"""medsafe curate: rationales, rubric reviews by scripted LLM judges and experts (review files),
regeneration with feedback, consensus or the round limit, history, JSONL and Parquet export."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from medsafe.authoring.prompts import block
from medsafe.cli import app
from medsafe.testing.mock_openai import MockConfig, MockOpenAIServer, ThreadedMockServer

runner = CliRunner()
HIGH = {"answer_correct": 1, "medical_facts": 5, "reasoning": 5, "safety": 5, "norms_cited": 5}
LOW = {"answer_correct": 1, "medical_facts": 2, "reasoning": 2, "safety": 3, "norms_cited": 2}
ALL_ONE = {"answer_correct": 0, "medical_facts": 1, "reasoning": 1, "safety": 1, "norms_cited": 1}


def _writer(user: str) -> str:
    feedback = block(user, "FEEDBACK") or ""
    revs = [int(x) for x in re.findall(r"rev=(\d+)", feedback)]
    rev = max(revs) + 1 if revs else 0
    question = block(user, "QUESTION") or ""
    return f"Facts, then reasoning about: {question.splitlines()[0]}. rev={rev}\nAnswer: A"


def _judge(model: str, user: str) -> str:
    question = block(user, "QUESTION") or ""
    rationale = block(user, "RATIONALE") or ""
    rev = int(re.search(r"rev=(\d+)", rationale).group(1))  # type: ignore[union-attr]
    if "[never]" in question:
        scores = HIGH if model == "judge-a" else ALL_ONE
        return json.dumps({"scores": scores, "feedback": f"{model} sees rev={rev}"})
    need = int(re.search(r"\[ok@(\d)\]", question).group(1))  # type: ignore[union-attr]
    good = rev >= need - 1
    return json.dumps(
        {"scores": HIGH if good else LOW, "feedback": "" if good else f"cite the norm; rev={rev}"}
    )


def respond(request: dict[str, Any]) -> str:
    user = str(request["messages"][-1]["content"])
    model = str(request["model"])
    return _writer(user) if model == "writer" else _judge(model, user)


@pytest.fixture
def mock() -> Iterator[MockOpenAIServer]:
    with ThreadedMockServer(MockConfig(request_responder=respond)) as server:
        yield server


def _suite(path: Path, markers: list[str]) -> Path:
    lines = []
    for n, marker in enumerate(markers):
        lines.append(
            json.dumps(
                {
                    "id": f"q{n:02d}",
                    "kind": "mcq",
                    "language": "en",
                    "question": f"Question {n} {marker}: which is right?",
                    "options": {"A": "Right", "B": "Wrong"},
                    "answer": "A",
                }
            )
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _history(out: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    return {r["id"]: r for r in rows}


def test_fifty_items_two_judges_consensus_or_round_limit(
    tmp_path: Path, mock: MockOpenAIServer
) -> None:
    markers = ["[ok@1]"] * 20 + ["[ok@2]"] * 10 + ["[ok@3]"] * 10 + ["[never]"] * 10
    suite = _suite(tmp_path / "s.jsonl", markers)
    out = tmp_path / "cur"
    result = runner.invoke(
        app,
        [
            "curate",
            str(suite),
            "--model",
            "openai/writer",
            "--judge",
            "openai/judge-a",
            "--judge",
            "openai/judge-b",
            "--base-url",
            mock.base_url,
            "--db",
            str(tmp_path / "m.db"),
            "-o",
            str(out),
            "--max-rounds",
            "3",
            "--sft",
            str(out / "sft.jsonl"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"] == {"accepted": 40, "unresolved": 10}
    sft = [json.loads(x) for x in (out / "sft.jsonl").read_text().splitlines()]
    assert len(sft) == 40 and [m["role"] for m in sft[0]["messages"]] == ["user", "assistant"]
    assert sft[0]["messages"][1]["content"].startswith("Facts, then reasoning")
    history = _history(out)
    rounds_to_accept = Counter(
        len(h["rounds"]) for h in history.values() if h["status"] == "accepted"
    )
    assert rounds_to_accept == {1: 20, 2: 10, 3: 10}
    for n, marker in enumerate(markers):
        h = history[f"q{n:02d}"]
        if marker == "[never]":
            assert h["status"] == "unresolved" and len(h["rounds"]) == 3
            assert "round limit 3 reached" in h["rounds"][-1]["reason"]
            assert all("differ by more than 1" in r["reason"] for r in h["rounds"])
        else:
            need = int(marker[4])
            assert [r["decision"] for r in h["rounds"]] == ["revise"] * (need - 1) + ["accepted"]
        for r in h["rounds"]:  # who / what / why of every round
            assert r["author"] == "openai/writer" and f"rev={r['round'] - 1}" in r["rationale"]
            assert {v["reviewer"] for v in r["reviews"]} == {"openai/judge-a", "openai/judge-b"}
    second = history["q25"]["rounds"][1]
    assert "rev=1" in second["rationale"]  # regenerated with the reviewers' feedback
    records = [json.loads(x) for x in (out / "curated.jsonl").read_text().splitlines()]
    assert len(records) == 40
    first = records[0]
    assert set(first) >= {
        "question",
        "options",
        "answer",
        "rationale",
        "rubric_scores",
        "rounds",
        "reviewers",
        "provenance",
    }
    assert first["rubric_scores"]["medical_facts"] == 5.0
    assert first["provenance"]["rubric_sha256"] and first["provenance"]["writer"] == "openai/writer"
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(out / "curated.parquet")
    assert table.num_rows == 40 and "rubric_scores" in table.column_names
    if importlib.util.find_spec("datasets") is not None:  # optional: not a medsafe dependency
        datasets: Any = importlib.import_module("datasets")
        loaded = datasets.load_dataset(
            "parquet",
            data_files=str(out / "curated.parquet"),
            split="train",
            cache_dir=str(tmp_path / "hf"),
        )
        assert loaded.num_rows == 40 and "rationale" in loaded.column_names
    asked = mock.state.requests
    again = runner.invoke(
        app,
        [
            "curate",
            str(suite),
            "--model",
            "openai/writer",
            "--judge",
            "openai/judge-a",
            "--judge",
            "openai/judge-b",
            "--base-url",
            mock.base_url,
            "--db",
            str(tmp_path / "m.db"),
            "-o",
            str(out),
        ],
    )
    assert again.exit_code == 0 and mock.state.requests == asked  # all cached


def _label(path: Path, item: str, who: str, scores: dict[str, int], **extra: str) -> None:
    line = {
        "type": "label",
        "item_id": item,
        "reviewer": who,
        "values": {k: str(v) for k, v in scores.items()},
        "rationale": "feedback",
        **extra,
    }
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")


def test_experts_through_review_files_edit_and_adjudication(
    tmp_path: Path, mock: MockOpenAIServer
) -> None:
    suite = _suite(tmp_path / "s.jsonl", ["[ok@1]", "[ok@1]", "[ok@1]"])
    out = tmp_path / "cur"
    args = [
        "curate",
        str(suite),
        "--model",
        "openai/writer",
        "--expert",
        "ann",
        "--expert",
        "bob",
        "--base-url",
        mock.base_url,
        "--db",
        str(tmp_path / "m.db"),
        "-o",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "waiting for expert labels" in result.output
    file1 = out / "round-1.review.jsonl"
    head = json.loads(file1.read_text().splitlines()[0])
    assert head["format"] == "medsafe-review/1"
    assert head["label_schema"]["fields"][0]["name"] == "answer_correct"
    _label(file1, "q00", "ann", HIGH)
    _label(file1, "q00", "bob", HIGH)  # agree, pass: accepted
    _label(file1, "q01", "ann", HIGH)
    _label(file1, "q01", "bob", ALL_ONE)  # disagree: adjudicated below
    _label(file1, "q02", "ann", LOW, edit="An expert's rationale. rev=9\nAnswer: A")
    result = runner.invoke(app, args)
    assert "waiting" in result.output  # bob has not labelled q02
    _label(file1, "q02", "bob", LOW)
    with file1.open("a") as fh:
        fh.write(
            json.dumps(
                {
                    "type": "adjudication",
                    "item_id": "q01",
                    "adjudicator": "cat",
                    "values": {k: str(v) for k, v in HIGH.items()},
                    "rationale": "ok",
                }
            )
            + "\n"
        )
    result = runner.invoke(app, [*args, "--json"])
    assert json.loads(result.stdout)["counts"] == {"accepted": 2, "waiting": 1}
    file2 = out / "round-2.review.jsonl"
    units = [json.loads(x) for x in file2.read_text().splitlines()[1:]]
    assert [u["item_id"] for u in units] == ["q02"]
    assert units[0]["messages"][1]["content"].startswith("An expert's rationale")
    _label(file2, "q02", "ann", HIGH)
    _label(file2, "q02", "bob", HIGH)
    result = runner.invoke(app, [*args, "--json"])
    assert json.loads(result.stdout)["counts"] == {"accepted": 3}
    history = _history(out)
    assert history["q01"]["rounds"][0]["reason"].startswith("adjudicated by cat")
    assert history["q02"]["rounds"][1]["author"] == "ann (edit)"
    other = _suite(tmp_path / "other.jsonl", ["[ok@1]"] * 2)
    result = runner.invoke(app, [*args[:1], str(other), *args[2:]])
    assert result.exit_code == 2 and "round-1.review.jsonl" in result.output
    assert "not this round's items" in result.output
    _label(file2, "q02", "zed", HIGH)
    result = runner.invoke(app, args)
    assert (
        result.exit_code == 2
        and "round-2.review.jsonl:5" in result.output
        and "zed" in result.output
    )


def test_rubric_file_and_bad_input(tmp_path: Path, mock: MockOpenAIServer) -> None:
    rubric = tmp_path / "r.toml"
    rubric.write_text('name = "x"\n[[criteria]]\nname = "ok"\nlo = 0\nhi = 1\npass = 2\n')
    suite = _suite(tmp_path / "s.jsonl", ["[ok@1]"])
    result = runner.invoke(
        app,
        [
            "curate",
            str(suite),
            "--model",
            "openai/writer",
            "--judge",
            "openai/judge-a",
            "--rubric",
            str(rubric),
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and "r.toml" in result.output and "pass" in result.output
    result = runner.invoke(
        app, ["curate", str(suite), "--model", "openai/writer", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "--judge" in result.output
    open_item = tmp_path / "o.jsonl"
    open_item.write_text(json.dumps({"id": "x", "kind": "open", "prompt": "Hi"}) + "\n")
    result = runner.invoke(
        app,
        [
            "curate",
            str(open_item),
            "--model",
            "openai/writer",
            "--judge",
            "openai/judge-a",
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and "item x" in result.output


def test_adjudicator_model_decides_a_disagreement(tmp_path: Path, mock: MockOpenAIServer) -> None:
    suite = _suite(tmp_path / "s.jsonl", ["[never]", "[ok@1]"])
    out = tmp_path / "cur"
    result = runner.invoke(
        app,
        [
            "curate",
            str(suite),
            "--model",
            "openai/writer",
            "--judge",
            "openai/judge-a",
            "--judge",
            "openai/judge-b",
            "--adjudicator",
            "openai/judge-a",
            "--base-url",
            mock.base_url,
            "--db",
            str(tmp_path / "m.db"),
            "-o",
            str(out),
            "--json",
        ],
    )
    assert json.loads(result.stdout)["counts"] == {"accepted": 2}
    rounds = _history(out)["q00"]["rounds"]
    assert len(rounds) == 1 and "adjudicated by openai/judge-a" in rounds[0]["reason"]
    assert rounds[0]["reviews"][-1]["kind"] == "adjudicator"


def test_experts_label_in_a_workbench_review_task(tmp_path: Path, mock: MockOpenAIServer) -> None:
    from medsafe.review.tasks import list_tasks, submit_label
    from medsafe.store.sqlite import Store

    suite = _suite(tmp_path / "s.jsonl", ["[ok@1]", "[ok@1]"])
    db = tmp_path / "m.db"
    args = [
        "curate",
        str(suite),
        "--model",
        "openai/writer",
        "--expert",
        "ann",
        "--expert",
        "bob",
        "--review-in",
        "workbench",
        "--base-url",
        mock.base_url,
        "--db",
        str(db),
        "-o",
        str(tmp_path / "cur"),
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    waiting = json.loads(result.stdout)["waiting_on"]
    assert len(waiting) == 1 and waiting[0].startswith("review task curate-")
    with Store(db) as store:
        (task,) = list_tasks(store.connection)
        task_id = task.spec.task_id
        assert task.spec.label_schema.name == "cot" and task.spec.reviewers == ("ann", "bob")
        values = {k: str(v) for k, v in HIGH.items()}
        for unit in ("q00~r1", "q01~r1"):
            submit_label(store.connection, task_id, unit, "ann", values, "fine")
        submit_label(store.connection, task_id, "q00~r1", "bob", values, "fine")
        submit_label(
            store.connection,
            task_id,
            "q01~r1",
            "bob",
            {k: str(v) for k, v in LOW.items()},
            "cite the norm; rev=0",
        )
    result = runner.invoke(app, args)
    assert json.loads(result.stdout)["counts"] == {"accepted": 1, "waiting": 1}
    history = _history(tmp_path / "cur")
    assert history["q01"]["rounds"][0]["decision"] == "revise"
    assert "rev=1" in history["q01"]["rounds"][1]["rationale"]  # regenerated with bob's feedback
    with Store(db) as store:
        assert len(list_tasks(store.connection)) == 2  # the second round's task


def test_k_of_n_reviewers_agreeing_decide(tmp_path: Path, mock: MockOpenAIServer) -> None:
    suite = _suite(tmp_path / "s.jsonl", ["[never]", "[ok@1]"])
    out = tmp_path / "cur"
    judges = ["--judge", "openai/judge-a", "--judge", "openai/judge-b", "--judge", "openai/judge-c"]
    result = runner.invoke(
        app,
        ["curate", str(suite), "--model", "openai/writer", *judges, "--k", "2", "--max-rounds",
         "2", "--base-url", mock.base_url, "--db", str(tmp_path / "m.db"), "-o", str(out),
         "--json"],
    )  # fmt: skip
    assert json.loads(result.stdout)["counts"] == {"accepted": 1, "unresolved": 1}
    history = _history(out)
    never = history["q00"]["rounds"]
    # judge-b and judge-c agree (all 1s) against judge-a: their mean decides, below pass
    assert never[0]["reason"].startswith("2 of 3 reviewers agree within 1; below pass on")
    assert never[0]["scores"]["medical_facts"] == 1.0
    assert history["q01"]["rounds"][0]["reason"] == "3 of 3 reviewers agree within 1"


def test_experts_label_through_the_workbench_pages(tmp_path: Path, mock: MockOpenAIServer) -> None:
    from tests.web_support import login, make_app

    suite = _suite(tmp_path / "s.jsonl", ["[ok@1]"])
    db = tmp_path / "m.db"
    args = ["curate", str(suite), "--model", "openai/writer", "--expert", "reviewer", "--expert",
            "reviewer2", "--review-in", "workbench", "--base-url", mock.base_url, "--db", str(db),
            "-o", str(tmp_path / "cur"), "--json"]  # fmt: skip
    waiting = json.loads(runner.invoke(app, args).stdout)["waiting_on"][0]
    task_id = waiting.split()[2]
    web = make_app(tmp_path, db)
    for user in ("reviewer", "reviewer2"):
        client = login(web, user)
        page = client.get(f"/review/task/{task_id}/unit/1")
        assert page.status_code == 200 and "Facts, then reasoning about: Question 0" in page.text
        assert 'name="field.medical_facts"' in page.text
        form = {f"field.{k}": str(v) for k, v in HIGH.items()}
        done = client.post_form(f"/review/task/{task_id}/unit/1", {**form, "rationale": "ok"})
        assert done.status_code in (200, 303), done.text
    result = runner.invoke(app, args)
    assert json.loads(result.stdout)["counts"] == {"accepted": 1}
    reviews = _history(tmp_path / "cur")["q00"]["rounds"][0]["reviews"]
    assert {(r["reviewer"], r["kind"]) for r in reviews} == {
        ("reviewer", "expert"),
        ("reviewer2", "expert"),
    }


def test_suite_rationales_are_reviewed_first(tmp_path: Path, mock: MockOpenAIServer) -> None:
    suite = tmp_path / "s.jsonl"
    item = {"id": "g1", "kind": "mcq", "question": "Q [ok@2]: which?", "answer": "A",
            "options": {"A": "Right", "B": "Wrong"},
            "metadata": {"rationale": "Given in the suite. rev=0"}}  # fmt: skip
    suite.write_text(json.dumps(item) + "\n")
    out = tmp_path / "cur"
    args = ["curate", str(suite), "--model", "openai/writer", "--judge", "openai/judge-a",
            "--base-url", mock.base_url, "--db", str(tmp_path / "m.db"), "-o", str(out),
            "--suite-rationales", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert json.loads(result.stdout)["counts"] == {"accepted": 1}
    rounds = _history(out)["g1"]["rounds"]
    assert [r["author"] for r in rounds] == ["suite (metadata.rationale)", "openai/writer"]
    assert (
        rounds[0]["rationale"] == "Given in the suite. rev=0" and "rev=1" in rounds[1]["rationale"]
    )
    result = runner.invoke(app, [*args[:-1], "--expert", "ann", "--review-in", "workbench"])
    assert result.exit_code == 2 and "--suite-rationales needs --review-in files" in result.output
