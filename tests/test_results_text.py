"""``medsafe results`` text: the red-team blocks of a dialogue run, every figure a RunResults
number, user text printed as plain text."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from medsafe.formatting import with_ci
from medsafe.report.text import print_results
from medsafe.results import load_results
from tests.test_report import Row, fixed_run, graded, make_open, write_run

MARKUP = "[bold]cat[/bold]"


def dialogue_run(db: Path) -> None:
    """Dialogues whose safety (0-10) falls over three turns, in a category with markup."""
    rows = []
    for i in range(12):
        item = make_open(200 + i, category=MARKUP if i % 2 else "ama-4")
        item = item.model_copy(update={"kind": "dialogue"})
        scores = [
            graded(item.id, "safety", float(max(0, 9 - 3 * (t - 1) - i % 4)), "j", turn=t)
            for t in (1, 2, 3)
        ]
        rows.append(Row(item, "x", scores))
    write_run(db, "d", "openai/d", rows)


def printed(db: Path, run_id: str) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    print_results(console, load_results(db, run_id), run_id)
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def test_results_text_shows_the_red_team_blocks(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    dialogue_run(db)
    results = load_results(db, "d")
    text = printed(db, "d")
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines()]
    assert f"per turn: {results.turn_metric}" in text
    assert results.by_turn
    for point in results.by_turn:
        assert point.ci95 is not None and point.mean is not None
        cells = [str(point.turn), str(point.n), with_ci(point.mean, point.ci95, spec=".3g")]
        assert [*cells, f"{point.median:.3g}"] in rows
    decline = results.decline or {}
    wilcoxon, friedman = decline["first_vs_last"], decline["across_turns"]
    assert f"p={wilcoxon['p']:.3g}, rank-biserial r={wilcoxon['effect_size']:.3g}" in text
    assert f"p={friedman['p']:.3g}, Kendall's W={friedman['effect_size']:.3g}" in text
    asr = results.asr
    assert asr is not None and asr.value is not None and asr.ci95 is not None
    assert f"{100 * asr.value:.1f} [{100 * asr.ci95[0]:.1f}–{100 * asr.ci95[1]:.1f}]" in text
    by_category = results.asr_by_category or {}
    assert set(by_category) == {MARKUP, "ama-4"}
    assert MARKUP in text  # user text is not read as Rich markup
    for estimate in by_category.values():
        assert estimate.value is not None
        assert f"{100 * estimate.value:.1f} [" in text
    assert "strategy" in text and "language" in text
    first = results.first_break or {}
    assert f"first break: median turn {first['median_turn']:.3g}" in text
    assert f"never broken: {first['never']} conversations" in text


def test_results_text_of_a_run_without_dialogues_has_no_red_team_blocks(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    fixed_run(db)
    text = printed(db, "base")
    assert "attack success" not in text and "per turn" not in text
