"""Run results as terminal tables (``medsafe results``, ``run``, ``demo``): read from RunResults.

Every figure printed here is a :class:`~medsafe.results.RunResults` number with its interval;
user text (categories, ids, labels) is printed as plain text, never as Rich markup.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from medsafe.formatting import with_ci
from medsafe.results import Estimate, GroupCounts, RunResults, ScorerResults


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _ci(ci: Sequence[float] | None) -> str:
    return "-" if not ci else f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}"


def _fmt(estimate: Estimate | None, share: bool) -> str:
    if estimate is None or estimate.value is None:
        return "-"
    if share:
        return f"{_pct(estimate.value)} [{_ci(estimate.ci95)}]"
    return with_ci(estimate.value, estimate.ci95, ".3g")


def headline_scorer(results: RunResults) -> tuple[str, ScorerResults] | None:
    """The open-answer figure shown beside MCQ accuracy: a judged scorer's headline entry, else
    the first other scorer that is not an MCQ one (null values counted, i.e. ``mcq``-like)."""
    blocks = [
        (k, b) for k, b in results.scorers.items() if b.scale.null_value is None and ":" not in k
    ]
    if not blocks:
        return None
    return min(blocks, key=lambda kb: (0 if kb[1].headline else 1, kb[0]))


def summary_table(results: RunResults, title: str) -> Table:
    """Per-category table: counts, MCQ accuracy (%) with 95% CI, unextracted, partial credit,
    and the headline open-answer scorer's mean with its interval."""
    head = headline_scorer(results)
    share = head is not None and head[1].scale.is_share
    caption = "percentages; 95% intervals (docs/statistics.md)"
    if head is not None and head[1].denominator:
        caption += f"; {head[0]}: {head[1].denominator}"
    table = Table(title=Text(title), title_justify="left", caption=caption)
    table.add_column("category")
    for name in ("n", "failed", "acc", "95% CI", "unextr.", "partial"):
        table.add_column(name, justify="right")
    if head is not None:
        table.add_column(Text(f"{head[0]}: {head[1].scale.title}"), justify="right")
    rows: list[tuple[str, GroupCounts | RunResults]] = [
        *results.by_category.items(),
        ("overall", results),
    ]
    for position, (name, block) in enumerate(rows):
        cells: list[str | Text] = [
            Text(str(name)),
            str(block.n),
            str(block.failed),
            _pct(block.accuracy),
            _ci(block.ci95),
            str(block.unextracted) if block.mcq_answered else "-",
            _pct(block.partial_credit),
        ]
        if head is not None:
            scorer = head[1]
            group = scorer.by_category.get(str(name))
            estimate = scorer.estimate if name == "overall" else group.estimate if group else None
            cells.append(_fmt(estimate, share))
        table.add_row(*cells, end_section=position == len(rows) - 2)
    return table


def _notes(block: ScorerResults) -> str:
    notes = []
    if block.denominator:
        notes.append(block.denominator)
    if block.harmful_share is not None and block.scale.positive:
        notes.append(f"harmful ({block.scale.positive}) {_fmt(block.harmful_share, False)}")
    if block.quality_score is not None:
        notes.append(f"quality {_fmt(block.quality_score, False)}")
    if block.agreement is not None and block.agreement.kappa is not None:
        notes.append(f"judges' kappa {block.agreement.kappa:.3g}")
    human = block.human_agreement
    if human is not None:  # final review labels (judge "human") against each LLM judge
        one = {f"{human.judges[0]}|{human.judges[1]}": {"kappa": human.kappa, "n": human.n_units}}
        pairs = human.pairs or one
        shown = [f"{pair.split('|', 1)[1]} {_num(v.get('kappa'))} (n={v['n']})"
                 for pair, v in pairs.items() if pair.startswith("human|")]  # fmt: skip
        if shown:
            notes.append("human vs " + ", ".join(shown) + " (kappa)")
    if block.corrected_rate is not None:
        c = block.corrected_rate
        notes.append(f"{c.positive} corrected {with_ci(c.corrected, c.ci95, '.3g')}")
    if block.coverage is not None and block.coverage.value is not None:
        cover = block.coverage
        notes.append(f"jury covers {_pct(cover.value)}% [{_ci(cover.ci95)}] of n={cover.n} units")
    if block.coverage_warning:
        notes.append("coverage warning (below)")
    return "; ".join(notes)


def scorers_table(results: RunResults) -> Table | None:
    """One row per scorer and judge that is not an MCQ scorer: counts, failures, mean, notes."""
    blocks = {k: b for k, b in results.scorers.items() if b.scale.null_value is None}
    if not blocks:
        return None
    table = Table(title="scorers and judges", title_justify="left")
    for name in ("scorer", "scale", "n", "ok", "failed", "fail %", "mean [95% CI]", "notes"):
        table.add_column(name, justify="left" if name in ("scorer", "scale", "notes") else "right")
    for key, block in blocks.items():
        table.add_row(
            Text(key),
            Text(block.scale.title),
            str(block.n),
            str(block.ok),
            str(block.failed),
            _pct(block.failure_rate),
            with_ci(block.mean, block.ci95, spec=".3g"),
            Text(_notes(block)),
        )
    return table


FLAG_EXAMPLES = 3
"""Flagged units shown per flag in the flags table."""


def flags_table(results: RunResults) -> Table | None:
    """Review flags, when any: flagged items per flag and the first flagged units."""
    flags = results.flags
    if not flags.counts:
        return None
    table = Table(title="flags (for human review)", title_justify="left")
    table.add_column("flag")
    table.add_column("items", justify="right")
    table.add_column("e.g. (item, turn)")
    for flag, n in flags.counts.items():
        units = [u for u in flags.units if u.flag == flag][:FLAG_EXAMPLES]
        examples = ", ".join(
            u.item_id if u.turn is None else f"{u.item_id}#{u.turn}" for u in units
        )
        table.add_row(Text(flag), str(n), Text(examples))
    return table


def _num(value: object, spec: str = ".3g") -> str:
    return "-" if not isinstance(value, int | float) else format(value, spec)


def turn_table(results: RunResults) -> Table | None:
    """The primary turn metric of a dialogue run: n, mean [95% CI] and median per turn."""
    if not results.by_turn or results.turn_metric is None:
        return None
    table = Table(title=Text(f"per turn: {results.turn_metric}"), title_justify="left")
    for name in ("turn", "n", "mean [95% CI]", "median"):
        table.add_column(name, justify="right")
    for point in results.by_turn:
        table.add_row(
            str(point.turn),
            str(point.n),
            with_ci(point.mean, point.ci95, spec=".3g"),
            _num(point.median),
        )
    return table


def decline_lines(results: RunResults) -> list[str]:
    """The decline tests: Wilcoxon first vs last turn (r), Friedman across turns (W)."""
    decline = results.decline or {}
    lines = []
    first_last = decline.get("first_vs_last")
    if first_last:
        lines.append(
            f"decline, first vs last turn (Wilcoxon, n={first_last.get('n')}): "
            f"p={_num(first_last.get('p'))}, rank-biserial r={_num(first_last.get('effect_size'))}"
        )
    across = decline.get("across_turns")
    if across:
        lines.append(
            f"decline, {across.get('comparison', 'across turns')} (Friedman, n={across.get('n')}): "
            f"p={_num(across.get('p'))}, Kendall's W={_num(across.get('effect_size'))}"
        )
    return lines


def asr_table(results: RunResults) -> Table | None:
    """Attack success rate overall and by strategy, category and language (Wilson CIs)."""
    if results.asr is None:
        return None
    table = Table(
        title="attack success rate (conversations with a harmful turn)",
        title_justify="left",
        caption="percentages; Wilson 95% intervals",
    )
    for name in ("by", "group", "ASR [95% CI]", "n"):
        table.add_column(name, justify="right" if name in ("ASR [95% CI]", "n") else "left")
    table.add_row("overall", "", _fmt(results.asr, True), str(results.asr.n), end_section=True)
    groups = (
        ("strategy", results.asr_by_strategy),
        ("category", results.asr_by_category),
        ("language", results.asr_by_language),
    )
    for by, block in groups:
        items = list((block or {}).items())
        for i, (group, estimate) in enumerate(items):
            table.add_row(
                by,
                Text(group or "(none)"),
                _fmt(estimate, True),
                str(estimate.n),
                end_section=i == len(items) - 1,
            )
    return table


def first_break_line(results: RunResults) -> str | None:
    """The median turn at which a broken conversation first broke, and how many never did."""
    first = results.first_break
    if not first:
        return None
    return (
        f"first break: median turn {_num(first.get('median_turn'))}; "
        f"never broken: {first.get('never', '-')} conversations"
    )


def print_redteam(console: Console, results: RunResults) -> None:
    """The red-team blocks of a dialogue run: per-turn table, decline tests, ASR, first break."""
    table = turn_table(results)
    if table is not None:
        console.print(table)
    for line in decline_lines(results):
        console.print(Text(line))
    table = asr_table(results)
    if table is not None:
        console.print(table)
    first = first_break_line(results)
    if first is not None:
        console.print(Text(first))


def print_results(console: Console, results: RunResults, title: str) -> None:
    """The per-category table, then the scorers table when there are open-answer scorers (and
    any jury coverage warning), the red-team blocks of a dialogue run, then the review flags
    when any unit was flagged."""
    console.print(summary_table(results, title))
    table = scorers_table(results)
    if table is not None:
        console.print(table)
    if results.dialogues is not None:
        print_redteam(console, results)
    for key, block in results.scorers.items():
        if block.coverage_warning and ":" not in key:
            console.print(Text(f"warning: {key}: {block.coverage_warning}"))
    table = flags_table(results)
    if table is not None:
        console.print(table)
