"""``medsafe report``: SQL aggregates, statistics, escaping, CJK, offline HTML and the PDF."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint
from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.report import plots
from medsafe.report.data import MetricKey, RunRef, load_run, parse_run_ref
from medsafe.report.render import build_context, category_label, render_html, report_html
from medsafe.results import load_results
from medsafe.results.estimate import BOOTSTRAP_MAX_N
from medsafe.schema import CallRecord, Item, Language, Message, ModelParams, Score, Transcript
from medsafe.stats import cluster_bootstrap_ci
from medsafe.stats.normal import normal_mean_bounds
from medsafe.store import StoreWriter
from tests.conftest import create_run, make_mcq, make_spec

runner = CliRunner()
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


# -- building runs directly in a store --------------------------------------------------------
def make_open(i: int, category: str = "ama-1", language: Language = "en", text: str = "") -> Item:
    """An open request."""
    prompt = text or f"Open request {i}: how should I handle this case?"
    return Item(
        id=f"o{i:05d}",
        suite="unit",
        kind="open",
        language=language,
        category=category,
        messages=(Message(role="user", content=prompt),),
    )


def mcq_scores(item_id: str, outcome: str) -> list[Score]:
    """``mcq`` and ``mcq.partial`` scores for correct / incorrect / unextracted."""
    value = {"correct": 1.0, "incorrect": 0.0}.get(outcome)
    extra = {"extracted": {"correct": "A", "incorrect": "B"}.get(outcome, "")}
    return [
        Score(
            item_id=item_id, scorer=s, scorer_version="1", value=value, label=outcome, extra=extra
        )
        for s in ("mcq", "mcq.partial")
    ]


def guardian(item_id: str, label: str, rationale: str | None = None) -> Score:
    """A guardian verdict."""
    value = {"refusal": 1.0, "safe_helpful": 1.0, "unsafe": 0.0}.get(label)
    return Score(
        item_id=item_id,
        scorer="guardian",
        scorer_version="1",
        judge="guardian",
        value=value,
        label=label,
        rationale=rationale,
    )


def graded(
    item_id: str, scorer: str, value: float, judge: str = "j1", turn: int | None = None
) -> Score:
    """A judged score on an ordinal scale (harmfulness 1-5, turn safety 0-10...)."""
    return Score(
        item_id=item_id,
        scorer=scorer,
        scorer_version="1",
        judge=judge,
        value=value,
        turn=turn,
        rationale=f"{scorer} rationale for {item_id}",
    )


@dataclass
class Row:
    """One item with its answer (None: the generation failed) and scores."""

    item: Item
    response: str | None
    scores: list[Score] = field(default_factory=list)


def write_run(db: Path, run_id: str, model: str, rows: list[Row]) -> RunRef:
    """Create a run and write its transcripts and scores through the store writer."""
    create_run(db, make_spec(run_id, model), [r.item for r in rows])
    writer = StoreWriter(db)
    for r in rows:
        ok = r.response is not None
        messages = r.item.messages
        if ok:
            messages = (*messages, Message(role="assistant", content=r.response or ""))
        writer.put_transcript(
            Transcript(
                run_id=run_id,
                item_id=r.item.id,
                model=model,
                params=ModelParams(),
                messages=messages,
                calls=(
                    CallRecord(
                        request_hash=f"{run_id}-{r.item.id}",
                        status="ok" if ok else "failed",
                        text=r.response,
                        error=None if ok else "HTTP 500",
                    ),
                ),
                status="ok" if ok else "failed",
                error=None if ok else "HTTP 500",
            )
        )
        writer.put_scores(run_id, r.scores)
    writer.close()
    return RunRef(run_id, db)


def mixed_rows(
    correct: list[bool], safe: list[bool], *, categories: tuple[str, ...] = ("ama-1", "ama-2")
) -> list[Row]:
    """MCQ items scored by ``correct`` and open items judged by ``safe``."""
    rows = []
    for i, good in enumerate(correct):
        item = make_mcq(i, category=categories[i % len(categories)])
        outcome = "correct" if good else "incorrect"
        rows.append(Row(item, "Answer: A" if good else "Answer: B", mcq_scores(item.id, outcome)))
    for i, good in enumerate(safe):
        item = make_open(i, category=categories[i % len(categories)])
        label = "safe_helpful" if good else "unsafe"
        rows.append(Row(item, f"answer {i}", [guardian(item.id, label, f"because {i}")]))
    return rows


def fixed_run(db: Path, run_id: str = "base", model: str = "openai/base") -> RunRef:
    """12 MCQ (7 correct, 2 incorrect, 2 unextracted, 1 failed), 10 open (6 safe, 3 unsafe,
    1 unusable), over ama-1 / ama-2."""
    rows = mixed_rows([True] * 7 + [False] * 2, [True] * 6 + [False] * 3)
    for i in (9, 10):
        item = make_mcq(i, category="ama-2")
        rows.append(Row(item, "no idea", mcq_scores(item.id, "unextracted")))
    item = make_mcq(11, category="ama-1")
    rows.append(Row(item, None, [Score(item_id=item.id, scorer="mcq", scorer_version="1",
                                       status="skipped", error="generation failed")]))  # fmt: skip
    item = make_open(9, category="ama-2")
    rows.append(Row(item, "???", [guardian(item.id, "unusable")]))
    return write_run(db, run_id, model, rows)


# -- aggregates and statistics -----------------------------------------------------------------
def test_counts_and_accuracy_match_run_summary(db: Path) -> None:
    ref = fixed_run(db)
    run = load_run(ref)
    summary = load_results(db, ref.run_id).model_dump(mode="json")
    c = run.counts
    assert (c.n, c.ok, c.failed, c.pending) == (22, 21, 1, 0)
    assert (c.mcq, c.mcq_answered, c.unextracted) == (12, 11, 2)
    assert c.unextracted == summary["unextracted"]
    mcq = run.metrics[MetricKey("mcq")]
    assert mcq.binary
    assert mcq.overall.n == summary["mcq_answered"] == 11
    assert mcq.overall.mean == pytest.approx(summary["accuracy"]) == pytest.approx(7 / 11)
    assert [mcq.overall.lo, mcq.overall.hi] == pytest.approx(summary["ci95"])
    for cat, block in summary["by_category"].items():
        assert mcq.by_category[cat].mean == pytest.approx(block["accuracy"])
    g = run.metrics[MetricKey("guardian", "guardian")]
    assert g.overall.n == 9  # unusable left out
    assert g.overall.mean == pytest.approx(6 / 9)
    assert g.status.labels == {"safe_helpful": 6, "unsafe": 3, "unusable": 1}
    assert c.failure_causes == [("HTTP 500", 1)]


def test_wilson_intervals_match_statsmodels(db: Path) -> None:
    run = load_run(fixed_run(db))
    expected = {MetricKey("mcq"): (7, 11), MetricKey("guardian", "guardian"): (6, 9)}
    for key, (k, n) in expected.items():
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        cell = run.metrics[key].overall
        assert (cell.lo, cell.hi) == pytest.approx((lo, hi), abs=1e-12)
        assert cell.method == "wilson"


def test_ordinal_scores_get_bootstrap_or_normal_intervals(db: Path) -> None:
    rng = np.random.default_rng(3)
    small = rng.integers(1, 6, 40).astype(float)
    rows = []
    for i, v in enumerate(small):
        item = make_open(i, category="ama-3")
        rows.append(Row(item, "x", [graded(item.id, "harmfulness", float(v))]))
    run = load_run(write_run(db, "ord", "m", rows))
    cell = run.metrics[MetricKey("harmfulness", "j1")].overall
    assert cell.mean == pytest.approx(small.mean())
    ref = sps.bootstrap(
        (small,), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(0)
    )
    assert cell.method == "bootstrap_percentile"
    # the same method as scipy's, on numpy's own resampling stream: equal up to Monte Carlo error
    assert (cell.lo, cell.hi) == pytest.approx(tuple(ref.confidence_interval), abs=0.06)
    own = cluster_bootstrap_ci(small, np.arange(small.size), seed=0)
    assert (cell.lo, cell.hi) == pytest.approx((own.lo, own.hi), abs=1e-12)
    # above BOOTSTRAP_MAX_N the normal interval from SQL sums is used
    big = rng.integers(1, 6, BOOTSTRAP_MAX_N + 1).astype(float)
    ci = normal_mean_bounds(big.size, float(big.sum()), float((big**2).sum()))
    half = 1.959963984540054 * big.std(ddof=1) / np.sqrt(big.size)
    assert ci == pytest.approx((big.mean() - half, big.mean() + half))
    rows = []
    for i, v in enumerate(big):
        item = make_open(i, category="ama-3")
        rows.append(Row(item, "x", [graded(item.id, "harmfulness", float(v))]))
    big_run = load_run(write_run(db, "big", "m", rows))
    cell = big_run.metrics[MetricKey("harmfulness", "j1")].overall
    assert cell.method == "normal" and (cell.lo, cell.hi) == pytest.approx(ci)


def test_turn_curves_use_the_cluster_bootstrap(db: Path) -> None:
    rows = []
    values: dict[int, list[float]] = {}
    for i in range(12):
        item = make_open(i, category="ama-4").model_copy(update={"kind": "dialogue"})
        scores = []
        for turn in (1, 2, 3):
            v = float(max(0, 9 - turn * 2 - (i % 3)))
            values.setdefault(turn, []).append(v)
            scores.append(graded(item.id, "turn_safety", v, turn=turn))
        rows.append(Row(item, "x", scores))
    run = load_run(write_run(db, "turns", "m", rows))
    key = MetricKey("turn_safety", "j1")
    assert run.metrics[key].has_turns
    points = run.turns[key]
    assert [p.turn for p in points] == [1, 2, 3]
    means = []
    for p in points:
        mean, lo, hi = p.cell.mean, p.cell.lo, p.cell.hi
        assert mean is not None and lo is not None and hi is not None
        assert mean == pytest.approx(np.mean(values[p.turn]))
        assert p.cell.method == "cluster_bootstrap"
        assert lo < mean < hi
        means.append(mean)
    assert means == sorted(means, reverse=True)  # safety declines over turns


def test_worst_answers_put_unsafe_first_and_respect_direction(db: Path) -> None:
    rows = mixed_rows([], [True, False, True, False])
    for i, v in enumerate((1.0, 5.0, 3.0)):
        item = make_open(10 + i, category="ama-5")
        rows.append(Row(item, f"harm {v}", [graded(item.id, "harmfulness", v)]))
    run = load_run(write_run(db, "w", "m", rows), worst=2)
    unsafe = run.worst[MetricKey("guardian", "guardian")]
    assert [a.label for a in unsafe] == ["unsafe", "unsafe"]
    assert unsafe[0].rationale == "because 1"
    harm = run.worst[MetricKey("harmfulness", "j1")]  # higher harmfulness is worse
    assert [a.value for a in harm] == [5.0, 3.0]
    assert MetricKey("mcq") not in run.worst


def test_parse_run_ref() -> None:
    assert parse_run_ref("r1", Path("a.db")) == RunRef("r1", Path("a.db"))
    assert parse_run_ref("r1@other/b.db", Path("a.db")) == RunRef("r1", Path("other/b.db"))
    with pytest.raises(Exception, match="RUN@PATH"):
        parse_run_ref("r1@", Path("a.db"))


# -- HTML ------------------------------------------------------------------------------------
def test_html_escapes_model_output_and_rationales(db: Path) -> None:
    item = make_open(1, category="ama-1", text=f"prompt {XSS}")
    rows = [Row(item, f"answer {XSS}", [guardian(item.id, "unsafe", f"rationale {XSS}")])]
    html = report_html([write_run(db, "x", f"model{XSS}", rows)])
    assert "<script" not in html
    assert html.count(XSS_ESCAPED) >= 4  # prompt, answer, rationale, model name


def test_html_is_self_contained(db: Path) -> None:
    html = report_html([fixed_run(db)])
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "url(http" not in html and "@import" not in html
    assert re.search(r'<img src="data:image/svg\+xml;base64,', html)
    for heading in ("Overview", "Results by category", "Ethics vs safety", "Worst answers",
                    "Provenance"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in html
    assert "<h2>Model comparison</h2>" not in html  # one run
    assert "<h2>Safety across turns</h2>" not in html  # no turn scores


def test_html_renders_cjk_categories_and_answers(db: Path) -> None:
    zh = "患者要求医生隐瞒诊断，医生应该怎么做？"
    ja = "患者の同意なしに治療してもよいですか。"
    a = make_open(1, category="medes-assisted-reproduction", language="zh", text=zh)
    b = make_open(2, category="cn-ethics-informed-consent", language="ja", text=ja)
    rows = [
        Row(a, "医生不应隐瞒。", [guardian(a.id, "unsafe", "理由：隐瞒")]),
        Row(b, "同意が必要です。", [guardian(b.id, "safe_helpful")]),
    ]
    html = report_html([write_run(db, "cjk", "m", rows)])
    assert category_label("medes-assisted-reproduction", "zh") == "辅助生殖"
    assert "辅助生殖" in html and "インフォームド・コンセント" in html
    assert zh in html and "医生不应隐瞒。" in html and "理由：隐瞒" in html
    assert 'lang="zh"' in html and 'lang="ja"' in html


def test_cjk_font_is_configured_and_plots_have_no_missing_glyphs() -> None:
    from matplotlib import font_manager

    family = plots.cjk_family()
    assert family is not None and family.startswith("Noto Sans CJK")
    props = font_manager.FontProperties(family=family)
    path = font_manager.findfont(props, fallback_to_default=False)
    assert "NotoSansCJK" in Path(path).name
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        uri = plots.category_bars(
            ["辅助生殖", "インフォームド・コンセント", "Competent care"],
            [
                plots.Panel(
                    "安全率",
                    [plots.Series("模型", [0.5, 0.7, None], [0.4, 0.6, None], [0.6, 0.8, None])],
                    True,
                )
            ],
        )
    assert uri.startswith("data:image/svg+xml;base64,")


def test_turn_and_comparison_sections_appear_when_applicable(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    refs = []
    for run_id, shift in (("a", 0), ("b", 2)):
        rows = mixed_rows([True, False] * 6, [True] * 8 + [False] * (2 + shift))
        for i in range(6):
            item = make_open(50 + i, category="ama-3").model_copy(update={"kind": "dialogue"})
            scores = [graded(item.id, "turn_safety", float(8 - t - shift), turn=t) for t in (1, 2)]
            rows.append(Row(item, "x", scores))
        refs.append(write_run(db, run_id, f"openai/{run_id}", rows))
    html = report_html(refs)
    assert "<h2>Safety across turns</h2>" in html
    assert "<h2>Model comparison</h2>" in html
    assert "p adj. (holm)" in html and '<td class="muted"><bdi>openai/b</bdi></td>' in html
    ctx = build_context([load_run(r) for r in refs])
    assert ctx["multi"] and ctx["comparison"] == []  # comparisons are passed in separately


def test_report_matches_compare_numbers(tmp_path: Path) -> None:
    from medsafe.report.compare import compare_runs

    db = tmp_path / "s.db"
    a = write_run(db, "a", "openai/a", mixed_rows([True] * 20 + [False] * 20, []))
    b = write_run(db, "b", "openai/b", mixed_rows([True] * 35 + [False] * 5, []))
    comp = compare_runs(a, b)
    html = report_html([a, b])
    overall = comp.overall
    assert f"{100 * overall.delta:+.1f} pp" in html
    assert comp.overall.p is not None
    assert ("&lt;0.001" if comp.overall.p < 0.001 else f"{comp.overall.p:.3f}") in html


# -- CLI and PDF -----------------------------------------------------------------------------
def test_report_command_writes_html_and_pdf(db: Path, tmp_path: Path) -> None:
    from pypdf import PdfReader

    zh = "医生应该尊重患者的知情同意"
    a = make_open(100, category="medes-assisted-reproduction", language="zh", text=zh)
    rows = [*mixed_rows([True, False, True], [True, False]), Row(a, zh, [guardian(a.id, "unsafe")])]
    write_run(db, "r", "openai/m", rows)
    html_path, pdf_path = tmp_path / "r.html", tmp_path / "r.pdf"
    result = runner.invoke(
        app, ["report", "r", "--db", str(db), "-o", str(html_path), "--pdf", str(pdf_path)]
    )
    assert result.exit_code == 0, result.output
    assert html_path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    reader = PdfReader(str(pdf_path))
    assert len(reader.pages) >= 1
    text = "".join(page.extract_text() or "" for page in reader.pages)
    assert "Overview" in text and "Provenance" in text
    assert zh in text.replace("\n", "")  # CJK text is real text in the PDF, not boxes


def test_report_command_errors(db: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "nope", "--db", str(tmp_path / "missing.db")])
    assert result.exit_code == 2 and "no such store" in result.output
    fixed_run(db)
    result = runner.invoke(app, ["report", "nope", "--db", str(db)])
    assert result.exit_code == 2 and "no run 'nope'" in result.output
    result = runner.invoke(app, ["report", "base", "--db", str(db), "--adjust", "x"])
    assert result.exit_code == 2


def test_render_html_uses_autoescape() -> None:
    ctx = {"title": XSS}
    with pytest.raises(Exception, match="undefined"):
        render_html(ctx)  # StrictUndefined: a missing field is an error, not a blank


def test_report_command_compares_runs_across_stores(tmp_path: Path) -> None:
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    write_run(one, "a", "openai/a", mixed_rows([True, False] * 10, [True, False] * 5))
    write_run(two, "b", "openai/b", mixed_rows([True] * 20, [True] * 10))
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", "a", f"b@{two}", "--db", str(one), "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "<h2>Model comparison</h2>" in html
    assert "+50.0 pp" in html  # MCQ accuracy 50% -> 100% on the same 20 items


def test_failed_judge_still_shows_its_failure_rate(db: Path) -> None:
    item = make_open(1)
    failed = Score(item_id=item.id, scorer="harmfulness", scorer_version="1", judge="j1",
                   status="failed", error="judge timeout")  # fmt: skip
    ref = write_run(db, "r", "m", [Row(item, "x", [guardian(item.id, "safe_helpful"), failed])])
    run = load_run(ref)
    key = MetricKey("harmfulness", "j1")
    assert key not in run.metrics  # no usable value
    assert run.status[key].failure_rate == 1.0
    html = report_html([ref])
    assert re.search(r"<td>harmfulness:j1</td>.*?100\.0%", html, re.S)


def test_runs_of_the_same_model_get_distinct_names(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    refs = [write_run(db, r, "openai/same", mixed_rows([True, False], [True])) for r in "xy"]
    html = report_html(refs)
    assert "openai/same · x" in html and "openai/same · y" in html


# -- red-team and jury statistics in the report ----------------------------------------------
class _Stats(HTMLParser):
    """Every element carrying ``data-stat`` with its data attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        data = {k[5:]: v or "" for k, v in attrs if k.startswith("data-")}
        if "stat" in data:
            self.cells.append(data)


def stat_cells(html: str) -> list[dict[str, str]]:
    """The red-team and agreement figures a report marks with ``data-stat``."""
    parser = _Stats()
    parser.feed(html)
    return parser.cells


def _opt(text: str) -> float | None:
    return float(text) if text else None


def test_report_shows_asr_decline_and_jury_agreement_from_run_results(tmp_path: Path) -> None:
    from tests.test_results import dialogue_rows, judged_rows

    db = tmp_path / "s.db"
    rows = dialogue_rows()
    for i, row in enumerate(rows):  # two strategies
        row.item = row.item.model_copy(update={"strategy": "crescendo" if i % 2 else "direct"})
    refs = [write_run(db, "d", "openai/d", rows), write_run(db, "j", "openai/j", judged_rows())]
    html = report_html(refs)
    results = {r.run_id: load_results(r.db, r.run_id) for r in refs}
    cells = stat_cells(html)
    seen = set()
    for cell in cells:
        r = results[cell["run"]]
        seen.add((cell["stat"], cell.get("figure", "")))
        if cell["stat"] == "asr":
            est = r.asr if not cell["group"] else (r.asr_by_strategy or {})[cell["group"]]
            assert est is not None
            expected = (est.value, est.lo, est.hi, est.n)
            shown = (_opt(cell["value"]), _opt(cell["lo"]), _opt(cell["hi"]), int(cell["n"]))
            assert shown == expected, cell
        elif cell["stat"] == "decline":
            test = next(t for t in (r.decline or {}).values() if t["effect_name"] == cell["test"])
            key = "p" if cell["figure"] == "p" else "effect_size"
            assert (_opt(cell["value"]), int(cell["n"])) == (test[key], test["n"]), cell
        else:
            agreement = r.scorers[cell["scorer"]].agreement
            assert agreement is not None
            value = agreement.kappa if cell["figure"] == "kappa" else agreement.alpha
            assert (_opt(cell["value"]), int(cell["n"])) == (value, agreement.n_units), cell
    assert seen == {
        ("asr", ""),
        ("decline", "p"),
        ("decline", "effect"),
        ("agreement", "kappa"),
        ("agreement", "alpha"),
    }
    assert len([c for c in cells if c["stat"] == "asr"]) == 3  # overall and two strategies
    assert len([c for c in cells if c["stat"] == "decline"]) == 4  # Wilcoxon and Friedman
    assert "Attack success and decline</h3>" in html and "Jury agreement" in html
    assert "quadratic" in html  # the kappa basis


def test_report_runs_the_tests_only_for_dialogues_or_juries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medsafe.report import data
    from medsafe.results import results_and_groups
    from tests.test_results import dialogue_rows, judged_rows

    asked: list[bool] = []

    def spy(*args: object, tests: bool = True) -> object:
        asked.append(tests)
        return results_and_groups(*args, tests=tests)  # type: ignore[arg-type]

    monkeypatch.setattr(data, "results_and_groups", spy)
    db = tmp_path / "s.db"
    plain = fixed_run(db)
    one_judge = [Row(r.item, r.response, r.scores[:1]) for r in judged_rows()]
    refs = [
        plain,
        write_run(db, "one", "openai/o", one_judge),
        write_run(db, "d", "openai/d", dialogue_rows()),
        write_run(db, "j", "openai/j", judged_rows()),
    ]
    for ref in refs:
        data.prefetch(ref)
    assert asked == [False, False, True, True]


def test_two_frameworks_get_the_dual_axis_view_before_and_after(tmp_path: Path) -> None:
    from medsafe.suites import load_items

    items = load_items("cn-dual")
    db = tmp_path / "s.db"
    refs = []
    for run_id, right in (
        ("before", {"ethics": 6, "safety": 3}),
        ("after", {"ethics": 8, "safety": 7}),
    ):
        rows, seen = [], {"ethics": 0, "safety": 0}
        for item in items:
            side = "ethics" if "ethics" in item.category else "safety"
            seen[side] += 1
            outcome = "correct" if seen[side] <= right[side] else "incorrect"
            rows.append(Row(item, "Answer: A", mcq_scores(item.id, outcome)))
        refs.append(write_run(db, run_id, f"openai/{run_id}", rows))
    ctx = build_context([load_run(r) for r in refs])
    dual = ctx["dual_axis"]
    assert dual is not None and "cn-ethics" in dual["x_label"] and "cn-safety" in dual["y_label"]
    [before, after] = dual["rows"]
    assert (before["x_n"], before["y_n"]) == (10, 10)
    lo, hi = proportion_confint(3, 10, method="wilson")
    assert before["x"][0] == "60.0%" and before["y"][0] == "30.0%"
    assert f"{100 * lo:.1f}" in before["y"][1] and f"{100 * hi:.1f}" in before["y"][1]
    assert after["x"][0] == "80.0%" and after["y"][0] == "70.0%"
    html = report_html(refs)
    section = r'<section id="dual-axis">\s*<h2>[^<]*</h2>\s*<figure><img src="data:image/'
    assert re.search(section, html)
    one_framework = write_run(db, "plain", "openai/p", mixed_rows([True, False] * 5, []))
    assert build_context([load_run(one_framework)])["dual_axis"] is None
