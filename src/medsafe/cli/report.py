"""``medsafe report`` and ``medsafe compare`` (registered on the main typer app in medsafe.cli).

Heavy imports (numpy, scipy, matplotlib, weasyprint) happen inside the commands, so that
``medsafe --help`` stays fast.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from medsafe.cli.dboption import db_location
from medsafe.errors import MedsafeError
from medsafe.exits import fail
from medsafe.formatting import emit_json

if TYPE_CHECKING:
    from medsafe.report.compare import Comparison

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)

DbOption = Annotated[
    Path,
    typer.Option(
        "--db",
        help="Results store (SQLite file or postgresql:// URL); RUN@PATH overrides it per run.",
        callback=db_location,
    ),
]
AdjustOption = Annotated[
    str, typer.Option("--adjust", help="Per-category p-value adjustment: holm or bh.")
]


def _check_adjust(adjust: str) -> Any:
    if adjust not in ("holm", "bh"):
        raise fail(f"--adjust must be holm or bh, not {adjust!r}")
    return adjust


def report_command(
    run_ids: Annotated[
        list[str], typer.Argument(help="Run ids (RUN or RUN@PATH); first is the baseline.")
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="HTML file to write; - for standard output.")
    ] = Path("report.html"),
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Also write this PDF.")] = None,
    db: DbOption = Path("medsafe.db"),
    worst: Annotated[int, typer.Option(min=0, help="Worst answers shown per metric.")] = 10,
    adjust: AdjustOption = "holm",
    governance: Annotated[
        bool,
        typer.Option(
            "--governance",
            help="Add the governance section: review and sign-off, data ethics, gate results.",
        ),
    ] = False,
) -> None:
    """Write a self-contained HTML report (and optionally a PDF) for one or more runs."""
    from medsafe.outputs import check_output, is_stdout, open_text, staged
    from medsafe.report.data import parse_run_ref, prefetch

    method = _check_adjust(adjust)
    started = time.perf_counter()
    try:
        check_output(output)
        if pdf is not None:
            check_output(pdf, stdout_ok=False)
        refs = [parse_run_ref(r, db) for r in run_ids]
        # The big SQL scans run in worker threads while the renderer's imports load.
        with ThreadPoolExecutor(max_workers=min(4, len(refs))) as pool:
            futures = [pool.submit(prefetch, ref) for ref in refs]
            from medsafe.report import plots
            from medsafe.report.render import build_report

            plots.cjk_family()
            ahead = [f.result() for f in futures]
        report = build_report(
            refs,
            worst=worst,
            adjust=method,
            for_pdf=pdf is not None,
            prefetched=ahead,
            governance=governance,
        )
    except MedsafeError as exc:
        raise fail(exc) from None
    html = report.html
    where = "standard output" if is_stdout(output) else str(output)
    message = f"wrote {where} ({len(html.encode('utf-8')) / 1024:.0f} KiB"
    try:
        with open_text(output, _note) as handle:
            handle.write(html)
        if pdf is not None:
            from medsafe.report.pdf import write_pdf

            with staged(pdf, _note) as tmp:
                pages = write_pdf(report.print_html or html, tmp)
            message += f"; {pdf}, {pages} page{'s' if pages != 1 else ''}"
    except MedsafeError as exc:
        raise fail(exc) from None
    done = f"{message}) in {time.perf_counter() - started:.2f} s"
    (_err if is_stdout(output) else _out).print(done, markup=False)


def _note(text: str) -> None:
    _err.print(f"note: {text}", markup=False, soft_wrap=True)


def _fmt(value: float | None, percent: bool, signed: bool = False) -> str:
    if value is None:
        return "-"
    if percent:
        return f"{100 * value:+.1f} pp" if signed else f"{100 * value:.1f}%"
    return f"{value:+.3g}" if signed else f"{value:.3g}"


def _ci(ci: list[float | None] | None, percent: bool) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    scale = 100.0 if percent else 1.0
    return f"[{scale * ci[0]:+.1f}, {scale * ci[1]:+.1f}]"


def _p(p: float | None) -> str:
    return "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def comparison_table(comparison: Comparison) -> Table:
    """Rich table: overall and per category, a / b / delta [CI] / test / p / adjusted p."""
    from medsafe.report.render import category_label

    data = comparison.to_dict()
    pct = comparison.binary or comparison.metric.is_mcq
    table = Table(
        title=Text(f"{data['metric']}: {comparison.run_b} vs {comparison.run_a} (paired by item)"),
        title_justify="left",
        caption=(
            f"unpaired items: {comparison.unpaired} ({comparison.only_a} only in A, "
            f"{comparison.only_b} only in B, {comparison.unscored} in both but unscored in one)"
        ),
        caption_justify="left",
    )
    for name in ("category", "n", "A", "B", "Δ = B − A [95% CI]", "test", "p", "p adj."):
        table.add_column(name, justify="left" if name in ("category", "test") else "right")
    rows: list[tuple[str | Text, dict[str, Any]]] = [
        (Text(f"{category_label(c, 'en')} ({c})"), r) for c, r in data["by_category"].items()
    ]
    rows.append(("overall", data["overall"]))
    for i, (label, r) in enumerate(rows):
        table.add_row(
            label,
            str(r["n_pairs"]),
            _fmt(r["a"], pct),
            _fmt(r["b"], pct),
            f"{_fmt(r['delta'], pct, signed=True)} {_ci(r['ci95'], pct)}",
            r["test"],
            _p(r["p"]),
            _p(r.get("p_adjusted")) if "p_adjusted" in r else "",
            end_section=i == len(rows) - 2,
        )
    return table


def compare_command(
    run_a: Annotated[str, typer.Argument(help="Baseline run (RUN or RUN@PATH).")],
    run_b: Annotated[str, typer.Argument(help="Run compared with it (RUN or RUN@PATH).")],
    db: DbOption = Path("medsafe.db"),
    metric: Annotated[
        str | None,
        typer.Option(help="Scorer or scorer:judge (default: mcq, else guardian, else first)."),
    ] = None,
    adjust: AdjustOption = "holm",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Paired comparison of two runs on the same items: delta, 95% CI, test, adjusted p."""
    from medsafe.report.compare import compare_runs
    from medsafe.report.data import parse_run_ref

    method = _check_adjust(adjust)
    try:
        comparison = compare_runs(
            parse_run_ref(run_a, db), parse_run_ref(run_b, db), metric=metric, adjust=method
        )
    except MedsafeError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(comparison.to_dict())
        return
    _out.print(comparison_table(comparison))
    mde = comparison.mde
    pct = comparison.binary or comparison.metric.is_mcq
    _out.print(
        f"minimum detectable effect (alpha 0.05, power 0.8): "
        f"{_fmt(mde.get('effect'), pct)} with {mde.get('n')} pairs ({mde.get('design')}); "
        f"p adjusted across categories with {method}"
    )
