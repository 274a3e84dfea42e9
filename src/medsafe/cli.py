"""The ``medsafe`` command line: a thin typer layer over the pipeline, store and summaries."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from medsafe.errors import MedsafeError
from medsafe.formatting import emit_json, with_ci
from medsafe.schema import ScorerSpec

app = typer.Typer(
    name="medsafe",
    help="Evaluate the ethics and patient safety of medical LLMs (zh/ja/en).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)

DbOption = Annotated[Path, typer.Option("--db", help="Results store (SQLite).")]
EXIT_BAD_INPUT = 2
EXIT_ALL_FAILED = 3


def _fail(exc: MedsafeError) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _ci(ci: list[float] | None) -> str:
    return "-" if not ci else f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}"


def parse_scorer(text: str) -> ScorerSpec:
    """``NAME`` or ``NAME:key=value,key=value`` -> a scorer spec (options are strings)."""
    from medsafe.schema import ScorerSpec

    name, _, rest = text.partition(":")
    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"scorer option {part!r} must look like key=value")
        options[key.strip()] = value.strip()
    if not name.strip():
        raise typer.BadParameter(f"scorer {text!r} has no name")
    return ScorerSpec(name=name.strip(), options=options)


def summary_table(summary: dict[str, Any], title: str) -> Table:
    """Per-category table: counts, MCQ accuracy (%) with 95% CI, unextracted, guardian safe %."""
    guardian = summary.get("scorers", {}).get("guardian", {})
    table = Table(title=title, title_justify="left", caption="percentages; 95% Wilson CIs")
    table.add_column("category")
    for name in ("n", "failed", "acc", "95% CI", "unextr.", "partial", "safe", "95% CI "):
        table.add_column(name, justify="right")
    rows = [*summary["by_category"].items(), ("overall", summary)]
    for position, (name, block) in enumerate(rows):
        g = guardian if name == "overall" else guardian.get("by_category", {}).get(name, {})
        answered = block["mcq_answered"]
        table.add_row(
            str(name),
            str(block["n"]),
            str(block["failed"]),
            _pct(block["accuracy"]),
            _ci(block["ci95"]),
            str(block["unextracted"]) if answered else "-",
            _pct(block["partial_credit"]),
            _pct(g.get("mean")),
            _ci(g.get("ci95")),
            end_section=position == len(rows) - 2,
        )
    return table


def _scorer_notes(block: dict[str, Any]) -> str:
    """The scorer-specific headline figures of one ``results`` scorer block, as text."""

    def num(value: float | None, ci: list[float] | None = None) -> str:
        return with_ci(value, ci, ".3g")

    notes = []
    for key, name in (("harmful_share", "harmful (>=4)"), ("risk_rate", "risk rate")):
        if isinstance(block.get(key), dict):
            notes.append(f"{name} {num(block[key]['value'], block[key]['ci95'])}")
    agreement = block.get("agreement")
    if isinstance(agreement, dict) and agreement.get("kappa") is not None:
        notes.append(f"judges' kappa {num(agreement['kappa'])}")
    corrected = block.get("corrected_rate")
    if isinstance(corrected, dict):
        notes.append(
            f"{corrected['positive']} corrected {num(corrected['corrected'], corrected['ci95'])}"
        )
    return "; ".join(notes)


def scorers_table(summary: dict[str, Any]) -> Table | None:
    """One row per judged scorer and judge (not ``mcq``): counts, failures, mean with CI."""
    blocks = {k: v for k, v in summary.get("scorers", {}).items() if not k.startswith("mcq")}
    if not blocks:
        return None
    table = Table(title="scorers and judges", title_justify="left")
    for name in ("scorer", "n", "ok", "failed", "fail %", "mean [95% CI]", "notes"):
        table.add_column(name, justify="left" if name in ("scorer", "notes") else "right")
    for key, block in blocks.items():
        table.add_row(
            key,
            str(block["n"]),
            str(block["ok"]),
            str(block["failed"]),
            _pct(block.get("failure_rate")),
            with_ci(block.get("mean"), block.get("ci95"), spec=".3g"),
            _scorer_notes(block),
        )
    return table


def print_summary(summary: dict[str, Any], title: str) -> None:
    """The per-category table, then the scorers table when there are judged scorers."""
    out.print(summary_table(summary, title))
    table = scorers_table(summary)
    if table is not None:
        out.print(table)


@app.command()
def suites() -> None:
    """List bundled suites and the loaders (--format names)."""
    from medsafe.suites import formats, get_loader
    from medsafe.suites.catalog import bundled_suites

    table = Table(title="Bundled suites", title_justify="left")
    table.add_column("name")
    table.add_column("format")
    table.add_column("description")
    for name, (_path, fmt, description) in sorted(bundled_suites().items()):
        table.add_row(name, fmt, description)
    out.print(table)
    loader_table = Table(title="Loaders (--format)", title_justify="left")
    loader_table.add_column("name")
    loader_table.add_column("reads")
    for name in formats():
        loader_table.add_row(name, get_loader(name).description)
    out.print(loader_table)


@app.command()
def run(
    suite: Annotated[
        str | None, typer.Argument(help="Suite file, directory or bundled name.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="KIND/NAME: openai/NAME, replay/PATH, hf/PATH, embedded/smollm2 (default; "
            "English-only)."
        ),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible base URL (or $OPENAI_BASE_URL).")
    ] = None,
    db: DbOption = Path("medsafe.db"),
    run_id: Annotated[str | None, typer.Option(help="Run id; reuse one to resume.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Loader name.")] = None,
    column_map: Annotated[
        str | None, typer.Option("--map", help="Column mapping, e.g. prompt=text,category=dim.")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 8,
    timeout: Annotated[float, typer.Option(min=0.001, help="Seconds per request.")] = 60.0,
    retries: Annotated[int, typer.Option(min=0, help="Retries per request.")] = 3,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N items.")] = None,
    rescore: Annotated[bool, typer.Option(help="Re-run scorers without generating.")] = False,
    rotate: Annotated[
        int | None,
        typer.Option(help="Circular evaluation: K rotations of MCQ options (0 = all)."),
    ] = None,
    scorer: Annotated[
        list[str] | None,
        typer.Option(
            "--scorer",
            help="Scorer NAME or NAME:key=value,... (repeatable), e.g. guardian:head=h.json",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file of named models (models.NAME tables) for --model and --judge.",
        ),
    ] = None,
    judge: Annotated[
        list[str] | None,
        typer.Option(
            "--judge",
            help="Add a judged scorer: SCORER[:MODEL] (repeatable; two for a jury), e.g. "
            "harmfulness:judge-a. Scorers: harmfulness, medes, rubric, safety, guardian.",
        ),
    ] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1)] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    attacker: Annotated[
        str | None,
        typer.Option(help="Attacker model (config name or KIND/NAME) for adaptive dialogues."),
    ] = None,
    attack_mode: Annotated[
        str | None, typer.Option(help="Adaptive attack: crescendo (default) or pair.")
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run (or resume) an evaluation: generate answers, score them, print a summary."""
    from medsafe.pipeline import RunOptions, run_evaluation
    from medsafe.schema import ModelParams
    from medsafe.suites import ColumnMapping, parse_mapping

    params = None
    if any(v is not None for v in (temperature, max_tokens, seed, system)):
        base = ModelParams()
        params = base.model_copy(
            update={
                k: v
                for k, v in {
                    "temperature": temperature,
                    "max_tokens": max_tokens,
                    "seed": seed,
                    "system_prompt": system,
                }.items()
                if v is not None
            }
        )
    if suite is None and run_id is None:
        console.print("[red]error:[/red] give a SUITE, or --run-id of a run to resume/rescore")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        options = RunOptions(
            suite=suite,
            model=model,
            db=db,
            run_id=run_id,
            base_url=base_url,
            fmt=fmt,
            mapping=parse_mapping(column_map) if column_map else ColumnMapping(),
            params=params,
            concurrency=concurrency,
            timeout_s=timeout,
            retries=retries,
            limit=limit,
            rotate=rotate,
            scorers=tuple(parse_scorer(s) for s in scorer) if scorer else None,
            config=config,
            judges=tuple(judge or ()),
            rescore=rescore,
            attacker=attacker,
            attack_mode=attack_mode,
            show_progress=sys.stderr.isatty() if progress is None else progress,
            notify=lambda text: console.print(f"[yellow]note:[/yellow] {text}"),
        )
        # The modules loaded so far live as long as the process: moving them out of the cyclic
        # collector's reach keeps its collections short while answers stream in.
        gc.freeze()
        outcome = run_evaluation(options)
    except MedsafeError as exc:
        raise _fail(exc) from None
    summary = {"run_id": outcome.spec.run_id, "model": outcome.spec.model, **outcome.summary}
    if as_json:
        emit_json(summary)
    else:
        print_summary(summary, f"run {outcome.spec.run_id} · {outcome.spec.model}")
        gen = outcome.generation
        if gen is not None:
            out.print(
                f"generated {gen.attempted} (ok {gen.ok}, failed {gen.failed}, "
                f"cached {gen.cached}); results in {db} (run id {outcome.spec.run_id})"
            )
    if summary["n"] and summary["failed"] == summary["n"]:
        console.print("[red]every model call failed[/red]")
        raise typer.Exit(EXIT_ALL_FAILED)


@app.command()
def results(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    db: DbOption = Path("medsafe.db"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Summarise a stored run: counts, accuracy with 95% CIs, per category and per scorer."""
    from medsafe.store import Store
    from medsafe.summary import run_summary

    if not db.exists():
        raise _fail(MedsafeError(f"{db}: no such store"))
    try:
        with Store(db) as store:
            record = store.require_run(run_id)
            summary = {
                "run_id": run_id,
                "model": record.spec.model,
                **run_summary(store.connection, run_id),
            }
    except MedsafeError as exc:
        raise _fail(exc) from None
    if as_json:
        emit_json(summary)
    else:
        print_summary(summary, f"run {run_id} · {record.spec.model}")


@app.command()
def export(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output file.")],
    db: DbOption = Path("medsafe.db"),
    fmt: Annotated[str, typer.Option("--format", help="jsonl or parquet.")] = "jsonl",
) -> None:
    """Export a run, one record per item, as JSONL or Parquet."""
    from medsafe.export import export_jsonl, export_parquet
    from medsafe.store import Store

    if fmt not in ("jsonl", "parquet"):
        raise _fail(MedsafeError(f"--format must be jsonl or parquet, not {fmt!r}"))
    if not db.exists():
        raise _fail(MedsafeError(f"{db}: no such store"))
    try:
        with Store(db) as store:
            writer = export_jsonl if fmt == "jsonl" else export_parquet
            count = writer(store, run_id, output)
    except MedsafeError as exc:
        raise _fail(exc) from None
    out.print(f"wrote {count} records to {output}")


@app.command()
def demo(
    db: DbOption = Path("medsafe-demo.db"),
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N items.")] = None,
    max_tokens: Annotated[int, typer.Option(min=1)] = 128,
) -> None:
    """Offline demo: the bundled starter suite on the embedded model, judged by the guardian."""
    from medsafe.export import export_jsonl
    from medsafe.pipeline import RunOptions, default_run_id, run_evaluation
    from medsafe.schema import ModelParams
    from medsafe.store import Store

    console.print(
        "[bold]medsafe demo[/bold]: starter suite (zh/ja/en) on embedded/smollm2 "
        "(SmolLM2-135M-Instruct, offline). [yellow]The model is English-only: its zh/ja answers "
        "are not meaningful, and the guardian should label them 'unusable'.[/yellow]"
    )
    run_id = default_run_id("starter", "smollm2")
    try:
        outcome = run_evaluation(
            RunOptions(
                suite="starter",
                model="embedded/smollm2",
                db=db,
                run_id=run_id,
                params=ModelParams(temperature=0.0, max_tokens=max_tokens, seed=0),
                limit=limit,
                concurrency=1,
                show_progress=sys.stderr.isatty(),
            )
        )
    except MedsafeError as exc:
        raise _fail(exc) from None
    summary = outcome.summary
    out.print(summary_table(summary, f"demo run {run_id} · embedded/smollm2"))
    by_language = summary["by_language"]
    lang = "  ".join(
        f"{k}: acc {_pct(v['accuracy'])}, unextracted {v['unextracted']}"
        for k, v in by_language.items()
    )
    out.print(f"by language: {lang}")
    guardian = summary["scorers"].get("guardian")
    if guardian:
        out.print(f"guardian labels: {guardian['labels']}")
    export_path = db.with_suffix(".jsonl")
    with Store(db) as store:
        export_jsonl(store, run_id, export_path)
    out.print(
        f"\nresults: store {db} (run id {run_id}); per-item export {export_path}\n"
        f"  medsafe results {run_id} --db {db} --json"
    )


from medsafe.report.cli import compare_command, report_command  # noqa: E402

app.command("report")(report_command)
app.command("compare")(compare_command)

from medsafe.calibrate.cli import calibrate_command  # noqa: E402

app.command("calibrate")(calibrate_command)


guardian_app = typer.Typer(help="The offline guardian: evaluate or retrain its head.")
app.add_typer(guardian_app, name="guardian")


def _print_evaluation(evaluation: Any, as_json: bool) -> None:
    data = evaluation.to_dict()
    if as_json:
        emit_json(data)
        return

    def fmt(value: float, ci: list[float]) -> str:
        return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"

    out.print(
        f"held-out n={data['n']}  accuracy {fmt(data['accuracy'], data['accuracy_ci'])}  "
        f"macro-F1 {fmt(data['macro_f1'], data['macro_f1_ci'])}"
    )
    table = Table(title="per class (95% CIs)", title_justify="left")
    for column in ("label", "support", "precision", "recall", "F1"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for label, block in data["per_class"].items():
        cells = [fmt(block[k], block[f"{k}_ci"]) for k in ("precision", "recall", "f1")]
        table.add_row(label, str(block["support"]), *cells)
    out.print(table)


@guardian_app.command("eval")
def guardian_eval(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Reproduce the shipped head's held-out figures (retrains from the shipped labels)."""
    from medsafe.guardian import reproduce_evaluation

    _print_evaluation(reproduce_evaluation(), as_json)


@guardian_app.command("train")
def guardian_train(
    labels: Annotated[
        Path, typer.Option("--labels", help="Labels JSONL (prompt, response, label).")
    ],
    output: Annotated[
        Path, typer.Option("-o", "--out", help="Where to write the head JSON.")
    ] = Path("guardian-head.json"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Train a guardian head on your reviewed labels; report held-out figures with 95% CIs.

    Use it with ``medsafe run ... --scorer guardian:head=PATH``.
    """
    from medsafe.guardian import train_and_save

    try:
        evaluation = train_and_save(labels, output, seed=seed)
    except MedsafeError as exc:
        raise _fail(exc) from None
    _print_evaluation(evaluation, as_json)
    console.print(f"head written to {output}; use --scorer guardian:head={output}")


from medsafe.redteam.cli import redteam_app  # noqa: E402

app.add_typer(redteam_app, name="redteam")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
