"""The review-flags block of RunResults and its table in ``medsafe results``."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.results import load_results
from medsafe.results.flags import MAX_UNITS
from medsafe.schema import Score
from medsafe.store import StoreWriter
from tests.conftest import create_run, make_spec
from tests.judge_helpers import open_item


def _run(db: Path, n_items: int, flags: dict[str, dict[str, object]]) -> None:
    items = [open_item(item_id=f"i{k:03d}", category="ama-1") for k in range(n_items)]
    create_run(db, make_spec("r", "openai/m"), items)
    writer = StoreWriter(db)
    scores = [
        Score(item_id=i.id, scorer="harmfulness", scorer_version="1", judge="judge-a", value=2)
        for i in items
    ]
    writer.put_scores("r", scores)
    for item_id, found in flags.items():
        writer.put_flags("r", item_id, found)
    writer.close()


def test_flags_are_counted_and_listed_by_unit(db: Path) -> None:
    _run(
        db,
        4,
        {
            "i000": {"suspected_injection": {"rules": ["en.address_judge"], "turns": [1, 3]}},
            "i002": {
                "suspected_injection": {"rules": ["any.forged_verdict"], "turns": [2]},
                "judge_disagreement:harmfulness": {"turns": [None], "threshold": 1.0},
            },
        },
    )
    flags = load_results(db, "r").flags
    assert flags.counts == {"judge_disagreement:harmfulness": 1, "suspected_injection": 2}
    assert [(u.item_id, u.turn, u.flag) for u in flags.units] == [
        ("i000", 1, "suspected_injection"),
        ("i000", 3, "suspected_injection"),
        ("i002", None, "judge_disagreement:harmfulness"),
        ("i002", 2, "suspected_injection"),
    ]
    assert flags.truncated is False


def test_flagged_units_are_capped(db: Path) -> None:
    n = MAX_UNITS + 5
    _run(db, n, {f"i{k:03d}": {"suspected_injection": {"turns": [1]}} for k in range(n)})
    flags = load_results(db, "r").flags
    assert flags.counts == {"suspected_injection": n}
    assert len(flags.units) == MAX_UNITS and flags.truncated is True


def test_a_run_without_flags_has_an_empty_block_and_no_table(db: Path) -> None:
    _run(db, 2, {})
    results = load_results(db, "r")
    assert results.flags.counts == {} and results.flags.units == []
    printed = CliRunner().invoke(app, ["results", "r", "--db", str(db)])
    assert printed.exit_code == 0, printed.output
    assert "flags" not in printed.stdout


def test_results_text_shows_a_flags_table(db: Path) -> None:
    _run(db, 3, {"i001": {"suspected_injection": {"turns": [2]}}})
    printed = CliRunner().invoke(app, ["results", "r", "--db", str(db)])
    assert printed.exit_code == 0, printed.output
    assert "flags (for human review)" in printed.stdout
    row = next(line for line in printed.stdout.splitlines() if "suspected_injection" in line)
    assert " 1 " in row and "i001#2" in row
    data = CliRunner().invoke(app, ["results", "r", "--db", str(db), "--json"])
    assert '"suspected_injection": 1' in data.stdout


def test_the_html_report_shows_the_flags(db: Path) -> None:
    from medsafe.report.data import RunRef
    from medsafe.report.render import report_html

    _run(db, 2, {"i001": {"suspected_injection": {"rules": ["en.ignore"], "turns": [1]}}})
    html = report_html([RunRef("r", db)])
    assert "Flagged for human review" in html
    assert 'data-stat="flags" data-flag="suspected_injection" data-value="1"' in html
    assert "<bdi>i001</bdi>" in html
