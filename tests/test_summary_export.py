"""Summaries (SQL aggregation, Wilson CIs) and JSONL/Parquet export."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from statsmodels.stats.proportion import proportion_confint

from medsafe.export import export_jsonl, export_parquet
from medsafe.results import load_results
from medsafe.schema import CallRecord, Message, ModelParams, Score, Transcript
from medsafe.stats.normal import wilson_bounds as wilson
from medsafe.store import Store, StoreWriter
from tests.conftest import create_run, make_mcq, make_spec


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (81, 263), (1, 1), (450, 1000)])
def test_wilson_matches_statsmodels(k: int, n: int) -> None:
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    ours = wilson(k, n)
    assert ours is not None
    assert ours[0] == pytest.approx(lo, abs=1e-12)
    assert ours[1] == pytest.approx(hi, abs=1e-12)
    assert wilson(0, 0) is None


def _fill(db: Path) -> None:
    """Five MCQ items: 2 correct, 1 incorrect, 1 unextracted, 1 failed generation."""
    items = [make_mcq(i, category="ama-1" if i < 3 else "ama-2") for i in range(5)]
    create_run(db, make_spec("r", "openai/m"), items)
    writer = StoreWriter(db)
    outcomes = ["correct", "correct", "incorrect", "unextracted", None]
    for item, label in zip(items, outcomes, strict=True):
        ok = label is not None
        text = {"correct": "Answer: A", "incorrect": "Answer: B", "unextracted": "<b>no</b>"}
        response = text.get(label or "", "")
        writer.put_transcript(
            Transcript(
                run_id="r",
                item_id=item.id,
                model="openai/m",
                params=ModelParams(),
                messages=(*item.messages, Message(role="assistant", content=response))
                if ok
                else item.messages,
                calls=(
                    CallRecord(
                        request_hash=f"h{item.id}",
                        status="ok" if ok else "failed",
                        text=response if ok else None,
                        error=None if ok else "HTTP 500",
                    ),
                ),
                status="ok" if ok else "failed",
                error=None if ok else "HTTP 500",
            )
        )
        if not ok:
            continue
        value = {"correct": 1.0, "incorrect": 0.0}.get(label or "")
        writer.put_scores(
            "r",
            [
                Score(
                    item_id=item.id,
                    scorer="mcq",
                    scorer_version="1",
                    value=value,
                    label=label,
                    extra={"extracted": {"correct": "A", "incorrect": "B"}.get(label or "", "")},
                ),
                Score(
                    item_id=item.id,
                    scorer="mcq.partial",
                    scorer_version="1",
                    value=value,
                    label=label,
                ),
            ],
        )
    writer.close()


def test_summary_counts_and_accuracy(db: Path) -> None:
    _fill(db)
    summary = load_results(db, "r").model_dump(mode="json")
    assert summary["n"] == 5 and summary["ok"] == 4 and summary["failed"] == 1
    assert summary["unextracted"] == 1
    assert summary["accuracy"] == pytest.approx(2 / 4)
    assert summary["accuracy_extracted"] == pytest.approx(2 / 3)
    assert summary["ci95"] == pytest.approx(wilson(2, 4))
    assert summary["mcq"] == {
        "value": summary["accuracy"],
        "ci95": summary["ci95"],
        "n": 4,
        "method": "wilson",
    }
    assert summary["by_category"]["ama-1"]["accuracy"] == pytest.approx(2 / 3)
    assert summary["by_category"]["ama-2"]["failed"] == 1
    assert summary["by_category"]["ama-2"]["accuracy"] == pytest.approx(0.0)
    mcq = summary["scorers"]["mcq"]
    # an unextracted answer counts as 0 (the scale's null_value): the mean equals accuracy
    assert mcq["n"] == 4 and mcq["mean"] == pytest.approx(2 / 4) == summary["accuracy"]
    assert mcq["ci95"] == summary["ci95"] and mcq["scale"]["kind"] == "binary"
    assert mcq["labels"] == {"correct": 2, "incorrect": 1, "unextracted": 1}


def test_export_jsonl_and_parquet_agree(db: Path, tmp_path: Path) -> None:
    _fill(db)
    with Store(db) as store:
        n_json = export_jsonl(store, "r", tmp_path / "out.jsonl")
        n_parquet = export_parquet(store, "r", tmp_path / "out.parquet", batch=2)
    assert n_json == n_parquet == 5
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "ok", "failed"]
    assert [r["correct"] for r in rows] == [True, True, False, None, None]
    assert [r["extracted"] for r in rows] == ["A", "A", "B", "", ""]
    assert rows[4]["error"] == "HTTP 500" and rows[4]["response"] is None
    assert {s["scorer"] for s in rows[0]["scores"]} == {"mcq", "mcq.partial"}
    assert set(rows[0]) >= {
        "item_id",
        "category",
        "language",
        "status",
        "error",
        "response",
        "flags",
        "scores",
        "extracted",
        "correct",
    }
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.num_rows == 5
    assert table.column("correct").to_pylist() == [True, True, False, None, None]
    assert table.column("item_id").to_pylist() == [r["item_id"] for r in rows]
    assert not (tmp_path / "out.jsonl.part").exists()


def test_export_carries_every_turn_and_the_judges_reasons(db: Path, tmp_path: Path) -> None:
    """A dialogue's record holds the whole conversation; a score its rationale and raw reply;
    JSONL and Parquet hold the same values."""
    from tests.test_show_delete import _conversation, fill

    fill(db)
    with Store(db) as store:
        export_jsonl(store, "a", tmp_path / "a.jsonl")
        export_parquet(store, "a", tmp_path / "a.parquet")
    rows = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    dialogue = rows[0]
    assert dialogue["turns"] == [{"role": m.role, "content": m.content} for m in _conversation()]
    assert dialogue["prompt"].endswith("turn one") and dialogue["response"] == "second answer"
    (score,) = dialogue["scores"]
    assert score["rationale"] == "gives a [red]dose[/red]" and score["raw"] == '{"score": 2}'
    assert rows[1]["turns"][-1] == {"role": "assistant", "content": "Answer: A"}
    table = pq.read_table(tmp_path / "a.parquet")
    assert table.to_pylist() == [{k: r.get(k) for k in table.schema.names} for r in rows]


def test_export_of_a_pending_item_holds_its_prompt_turns(db: Path, tmp_path: Path) -> None:
    item = make_mcq(0)
    create_run(db, make_spec("p", "openai/m"), [item])
    with Store(db) as store:
        export_jsonl(store, "p", tmp_path / "p.jsonl")
    (row,) = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert row["status"] == "pending"
    assert row["turns"] == [{"role": m.role, "content": m.content} for m in item.messages]
