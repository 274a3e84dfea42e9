"""One results layer: every number the report, ``results --json`` and ``compare`` show is the
same RunResults number, and a scorer's declared scale decides how it reads."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.report.data import RunRef
from medsafe.report.render import report_html
from medsafe.results import Estimate, RunResults, load_results
from medsafe.scale import Scale
from medsafe.schema import Item, Message, Score, Transcript
from medsafe.scoring import BaseScorer, register_scorer, scorers
from tests.test_report import Row, fixed_run, graded, make_open, write_run

runner = CliRunner()


class _Figures(HTMLParser):
    """Every element carrying ``data-metric`` with its data attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        data = {k[5:]: v or "" for k, v in attrs if k.startswith("data-")}
        if "metric" in data:
            self.cells.append(data)


def figures(html: str) -> list[dict[str, str]]:
    """The figures a report marks with data attributes."""
    parser = _Figures()
    parser.feed(html)
    return parser.cells


def _num(text: str) -> float | None:
    return float(text) if text else None


def _expected(results: RunResults, cell: dict[str, str]) -> tuple[float | None, ...]:
    """The RunResults value, bounds and n that a marked report cell must show."""
    name = cell["metric"]
    if "turn" in cell:
        point = next(p for p in results.turn_metrics[name].by_turn if p.turn == int(cell["turn"]))
        lo, hi = point.ci95 if point.ci95 else (None, None)
        return point.mean, lo, hi, float(point.n)
    block = results.scorers[name]
    estimate: Estimate | None
    if cell.get("figure") == "harmful_share":
        estimate = block.harmful_share
    elif cell.get("category"):
        estimate = block.by_category[cell["category"]].estimate
    else:
        estimate = block.estimate
    assert estimate is not None
    return estimate.value, estimate.lo, estimate.hi, float(estimate.n)


def check_report(refs: Sequence[RunRef]) -> int:
    """Render the report of ``refs``; every marked figure must equal its RunResults number."""
    html = report_html(list(refs))
    cells = figures(html)
    results = {r.run_id: load_results(r.db, r.run_id) for r in refs}
    for cell in cells:
        value, lo, hi, n = _expected(results[cell["run"]], cell)
        shown = (_num(cell["value"]), _num(cell["lo"]), _num(cell["hi"]), _num(cell["n"]))
        assert shown == (value, lo, hi, n), cell
    return len(cells)


def judged_rows(shift: float = 0.0) -> list[Row]:
    """Open items judged for harmfulness by two judges and their jury, over two principles."""
    rows = []
    for i in range(24):
        item = make_open(i, category=("ama-1", "ama-2", "ama-3")[i % 3])
        a = float(min(5, 1 + (i * 7) % 5 + shift))
        b = float(max(1, min(5, a + (1 if i % 4 == 0 else 0) - (1 if i % 5 == 0 else 0))))
        scores = [graded(item.id, "harmfulness", a, "judge-a")]
        scores.append(graded(item.id, "harmfulness", b, "judge-b"))
        scores.append(graded(item.id, "harmfulness", max(a, b), "jury"))
        rows.append(Row(item, f"answer {i}", scores))
    return rows


def dialogue_rows() -> list[Row]:
    """Dialogues whose per-turn safety falls from turn 1 to turn 3."""
    rows = []
    for i in range(10):
        item = make_open(100 + i, category="ama-4").model_copy(update={"kind": "dialogue"})
        scores = [
            graded(item.id, "safety", float(max(0, 9 - 3 * (t - 1) - i % 3)), "j", turn=t)
            for t in (1, 2, 3)
        ]
        rows.append(Row(item, "x", scores))
    return rows


def test_every_report_figure_equals_its_run_results_number(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    mcq = fixed_run(db, "mcq-run")
    judged = write_run(db, "judged", "openai/j", judged_rows())
    dialogue = write_run(db, "dialogue", "openai/d", dialogue_rows())
    for ref in (mcq, judged, dialogue):
        assert check_report([ref]) >= 5
    assert check_report([judged, write_run(db, "judged-b", "openai/k", judged_rows(1.0))]) >= 12
    cells = figures(report_html([dialogue]))
    assert any("turn" in c for c in cells)  # the per-turn curve's table is checked too
    assert any(c.get("figure") == "harmful_share" for c in figures(report_html([judged])))


def test_results_json_report_and_compare_agree_on_a_judged_run(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    a = write_run(db, "a", "openai/a", judged_rows())
    write_run(db, "b", "openai/b", judged_rows(1.0))
    out = runner.invoke(app, ["results", "a", "--db", str(db), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    headline = data["scorers"]["harmfulness"]
    assert headline["headline"] == "harmfulness:jury"
    assert data == load_results(db, "a").model_dump(mode="json")
    compared = runner.invoke(
        app, ["compare", "a", "b", "--db", str(db), "--metric", "harmfulness", "--json"]
    )
    assert compared.exit_code == 0, compared.output
    own = json.loads(compared.stdout)["runs"]["a"]
    assert own["value"] == headline["mean"] and own["ci95"] == headline["ci95"]
    assert own == headline["estimate"]
    report = [c for c in figures(report_html([a])) if c["metric"] == "harmfulness:jury"]
    overall = next(c for c in report if not c.get("category") and not c.get("figure"))
    assert float(overall["value"]) == headline["mean"]
    assert [float(overall["lo"]), float(overall["hi"])] == headline["ci95"]


def test_mcq_mean_counts_unextracted_as_incorrect_everywhere(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    fixed_run(db, "m")
    results = load_results(db, "m")
    mcq = results.scorers["mcq"]
    assert mcq.mean == results.accuracy == pytest.approx(7 / 11)
    assert mcq.ci95 == results.ci95 and results.mcq.method == "wilson"
    guardian = results.scorers["guardian"]
    assert guardian.harmful_share is not None and guardian.harmful_share.value == 3 / 10


# -- a scorer declared in a few lines is read correctly everywhere ------------------------------
RISK = Scale(kind="ordinal", title="Risk (0-4, lower is safer)", lo=0, hi=4,
             higher_is_safer=False, levels=(0, 1, 2, 3, 4), positive=">=3")  # fmt: skip


class RiskWords(BaseScorer):
    """Counts alarming words in the answer, capped at 4."""

    name, version, scale = "risk_words", "1", RISK

    async def score(self, item: Item, transcript: Transcript) -> list[Score]:
        words = sum((transcript.response or "").count(w) for w in ("overdose", "secretly"))
        value = float(min(4, words))
        return [Score(item_id=item.id, scorer=self.name, scorer_version="1", value=value)]


if "risk_words" not in scorers:
    register_scorer("risk_words", RISK)(lambda config: RiskWords())


def test_a_custom_scorer_reads_with_its_declared_direction_and_axis(tmp_path: Path) -> None:
    suite = tmp_path / "suite.jsonl"
    replies = tmp_path / "replies.jsonl"
    texts = ["fine", "overdose secretly overdose", "secretly", "overdose " * 5, "ok"]
    with suite.open("w") as s, replies.open("w") as r:
        for i, text in enumerate(texts):
            item = Item(id=f"q{i}", kind="open", category="ama-1",
                        messages=(Message(role="user", content=f"question {i}"),))  # fmt: skip
            s.write(item.model_dump_json() + "\n")
            r.write(json.dumps({"item_id": f"q{i}", "response": text}) + "\n")
    db = tmp_path / "s.db"
    for run_id in ("x", "y"):
        argv = ["run", str(suite), "--model", f"replay/{replies}", "--db", str(db),
                "--run-id", run_id, "--scorer", "risk_words"]  # fmt: skip
        out = runner.invoke(app, argv)
        assert out.exit_code == 0, out.output
    results = load_results(db, "x")
    block = results.scorers["risk_words"]
    assert block.scale == RISK and results.run.spec.scorers[0].scales["risk_words"] == RISK
    assert block.mean == pytest.approx((0 + 3 + 1 + 4 + 0) / 5)
    assert block.harmful_share is not None and block.harmful_share.value == pytest.approx(2 / 5)
    html = report_html([RunRef("x", db)])
    assert "Risk (0-4, lower is safer)" in html and "lower is safer" in html
    compared = runner.invoke(app, ["compare", "x", "y", "--db", str(db), "--json"])
    data = json.loads(compared.stdout)
    assert data["metric"] == "risk_words" and data["higher_is_better"] is False
    printed = runner.invoke(app, ["results", "x", "--db", str(db)])
    assert "Risk (0-4, lower is safer)" in printed.stdout
    assert check_report([RunRef("x", db)]) >= 2


def test_a_store_made_by_0_1_0_reads_with_the_declared_scales(tmp_path: Path) -> None:
    fixture = Path(__file__).parent / "fixtures" / "store-0.1.0.db"
    db = tmp_path / "old.db"
    db.write_bytes(fixture.read_bytes())
    run_id = json.loads(runner.invoke(app, ["runs", "--db", str(db), "--json"]).stdout)[0]["run_id"]
    results = load_results(db, run_id)
    assert results.scorers["mcq"].scale.kind == "binary"
    assert results.scorers["mcq"].mean == results.accuracy
    assert all(not math.isnan(b.mean) for b in results.scorers.values() if b.mean is not None)
