"""The ``medsafe`` command line: a thin typer layer over the pipeline, store and summaries."""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from medsafe.cli.align import align_app
from medsafe.cli.audit import audit_app
from medsafe.cli.authoring import corpus_app, curate_command, generate_app
from medsafe.cli.calibrate import calibrate_command
from medsafe.cli.check_data import check_data_command
from medsafe.cli.db import db_app
from medsafe.cli.dboption import DB_HELP, db_location, require_store
from medsafe.cli.gate import gate_command
from medsafe.cli.manifest import keys_app, manifest_command
from medsafe.cli.qc import qc_app
from medsafe.cli.redteam import redteam_app
from medsafe.cli.report import compare_command, report_command
from medsafe.cli.review import review_app, signoff_command
from medsafe.cli.serve import serve_command
from medsafe.cli.users import users_app
from medsafe.errors import MedsafeError
from medsafe.exits import ExitCode, fail
from medsafe.formatting import emit_json
from medsafe.schema import ScorerSpec

if TYPE_CHECKING:
    from medsafe.store import RunRecord

app = typer.Typer(
    name="medsafe",
    help="Evaluate the ethics and patient safety of medical LLMs (zh/ja/en).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)

DbOption = Annotated[Path, typer.Option("--db", help=DB_HELP, callback=db_location)]
RunStatus = Literal["complete", "partial", "failed", "running"]
"""``running``: a live process holds the run's lease (it is being generated or scored now)."""


def _show_version(value: bool) -> None:
    if value:
        from medsafe._version import __version__

        out.print(Text(f"medsafe {__version__}"))
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Global options (the app's help is the ``Typer(help=...)`` above)."""


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
            help=escape("TOML file with [models.NAME] entries, for --model and --judge."),
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
    temperature: Annotated[float | None, typer.Option(help="0 to 2.")] = None,
    top_p: Annotated[float | None, typer.Option(help="Above 0, at most 1.")] = None,
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
        typer.Option(
            "--progress/--no-progress",
            help="Progress: a bar on a terminal, else a plain line every 10 s (default: on).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Take over a stale lease on the run (never a live one's)."),
    ] = False,
    phi_check: Annotated[
        str | None,
        typer.Option(
            "--phi-check",
            help="off, warn or block: items with personal identifiers and a non-loopback "
            "endpoint (default: block when an endpoint is remote).",
        ),
    ] = None,
    allow_phi: Annotated[
        bool,
        typer.Option(
            "--allow-phi",
            help="Send items with identifiers to a remote endpoint anyway (recorded).",
        ),
    ] = False,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            help="Where model calls run: local (this process) or ray (Ray actors; "
            "pip install 'medsafe[ray]').",
        ),
    ] = "local",
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Ray actors with --executor ray (default: one per GPU for a local model on "
            "GPUs, else one per CPU).",
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="A running Ray cluster, auto or HOST:PORT (default: start one on 127.0.0.1 "
            "and stop it at the end).",
        ),
    ] = None,
) -> None:
    """Run (or resume) an evaluation: generate answers, score them, print a summary."""
    from medsafe.pipeline import RunOptions, run_evaluation
    from medsafe.schema import ModelParams
    from medsafe.suites import ColumnMapping, parse_mapping

    params = None
    if any(v is not None for v in (temperature, top_p, max_tokens, seed, system)):
        base = ModelParams()
        params = base.model_copy(
            update={
                k: v
                for k, v in {
                    "temperature": temperature,
                    "top_p": top_p,
                    "max_tokens": max_tokens,
                    "seed": seed,
                    "system_prompt": system,
                }.items()
                if v is not None
            }
        )
    if suite is None and run_id is None:
        raise fail("give a SUITE, or --run-id of a run to resume/rescore")
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
            show_progress=True if progress is None else progress,  # plain lines off a tty
            notify=lambda text: console.print(Text.assemble(("note:", "yellow"), " ", text)),
            force=force,
            phi_check=phi_check,
            allow_phi=allow_phi,
            executor=executor,
            workers=workers,
            ray_address=ray_address,
        )
        # The modules loaded so far live as long as the process: moving them out of the cyclic
        # collector's reach keeps its collections short while answers stream in.
        gc.freeze()
        outcome = run_evaluation(options)
    except MedsafeError as exc:
        raise fail(exc) from None
    results = outcome.results
    if as_json:
        emit_json(results.model_dump(mode="json"))
    else:
        from medsafe.report.text import print_results

        print_results(out, results, f"run {outcome.spec.run_id} · {outcome.spec.model}")
        gen = outcome.generation
        if gen is not None:
            out.print(
                f"generated {gen.attempted} (ok {gen.ok}, failed {gen.failed}, "
                f"cached {gen.cached}); results in {db} (run id {outcome.spec.run_id})"
            )
    if results.n and results.failed == results.n:
        _print_failure_causes(db, outcome.spec.run_id)
        raise fail("every model call failed", ExitCode.ALL_CALLS_FAILED)


def _print_failure_causes(db: Path, run_id: str, limit: int = 3) -> None:
    """The run's most frequent distinct failure causes (redacted), before the exit-3 error."""
    from medsafe.redact import redact
    from medsafe.store import Store
    from medsafe.store.aggregates import failure_causes

    with Store(db) as store:
        causes = failure_causes(store.connection, run_id, limit)
    for cause, count in causes:
        text = redact(cause) or "(no cause recorded)"
        line = Text.assemble(("cause:", "yellow"), f" {text} ({count} calls)")
        console.print(line, soft_wrap=True)


@app.command()
def results(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    db: DbOption = Path("medsafe.db"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Summarise a stored run: counts, accuracy with 95% CIs, per category and per scorer."""
    from medsafe.results import load_results

    try:
        results = load_results(db, run_id)
    except MedsafeError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(results.model_dump(mode="json"))
    else:
        from medsafe.report.text import print_results

        print_results(out, results, f"run {run_id} · {results.run.spec.model}")


def run_status(counts: dict[str, int], live: bool = False) -> RunStatus:
    """A run's status from :meth:`Store.status_counts`: ``running`` when a live process holds
    its lease, ``complete`` when every item has an ok answer, ``failed`` when every item's call
    failed, else ``partial`` (items pending or failed: an interrupted run)."""
    if live:
        return "running"
    if counts["ok"] == counts["n"]:
        return "complete"
    if counts["failed"] == counts["n"]:
        return "failed"
    return "partial"


def _run_row(record: RunRecord, counts: dict[str, int], live: bool) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "model": record.spec.model,
        "suite": record.spec.suite,
        "n": counts["n"],
        "ok": counts["ok"],
        "failed": counts["failed"],
        "pending": counts["pending"],
        "status": run_status(counts, live),
        "created": record.created,
        "updated": record.updated,
    }


@app.command()
def runs(
    db: DbOption = Path("medsafe.db"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List a store's runs, oldest first: id, model, suite, items, status, created."""
    from medsafe.store import Store
    from medsafe.store.lease import live_runs

    require_store(db)
    try:
        with Store(db) as store:
            live = live_runs(store.connection)
            rows = [
                _run_row(r, store.status_counts(r.run_id), r.run_id in live)
                for r in store.list_runs()
            ]
    except MedsafeError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(rows)
        return
    table = Table(title=Text(f"runs in {db}"), title_justify="left")
    columns = ("run_id", "model", "suite", "n", "status", "created")
    for column in columns:
        table.add_column(column, justify="right" if column == "n" else "left")
    for row in rows:
        table.add_row(*(Text(str(row[column])) for column in columns))
    out.print(table)


@app.command()
def export(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Output file; - for standard output.")
    ],
    db: DbOption = Path("medsafe.db"),
    fmt: Annotated[str, typer.Option("--format", help="jsonl or parquet.")] = "jsonl",
) -> None:
    """Export a run, one record per item (every turn, every score with its rationale)."""
    from medsafe.export import export_jsonl, export_parquet
    from medsafe.outputs import check_output, is_stdout
    from medsafe.store import Store

    if fmt not in ("jsonl", "parquet"):
        raise fail(f"--format must be jsonl or parquet, not {fmt!r}")
    require_store(db)
    try:
        check_output(output)
        with Store(db) as store:
            writer = export_jsonl if fmt == "jsonl" else export_parquet
            count = writer(store, run_id, output, notify=_note)
    except MedsafeError as exc:
        raise fail(exc) from None
    where = "standard output" if is_stdout(output) else str(output)
    (console if is_stdout(output) else out).print(f"wrote {count} records to {where}", markup=False)


def _note(text: str) -> None:
    console.print(Text.assemble(("note:", "yellow"), " ", text), soft_wrap=True)


def _require_store(db: Path) -> None:
    require_store(db)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    item_id: Annotated[str, typer.Argument(help="Item id.")],
    db: DbOption = Path("medsafe.db"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one item of a run: every turn, every score (with rationale) and its flags."""
    from medsafe.store import Store
    from medsafe.store.queries import find_item, flag_details, item_messages, item_scores

    _require_store(db)
    try:
        with Store(db) as store:
            store.require_run(run_id)
            item = find_item(store, run_id, item_id)
            if item is None:
                raise fail(f"{db}: run {run_id!r} has no item {item_id!r}")
            turns = item_messages(store, run_id, [item_id]).get(item_id) or list(item.messages)
            scores = item_scores(store, run_id, [item_id]).get(item_id, [])
            flags = flag_details(store, run_id, item_id)
    except MedsafeError as exc:
        raise fail(exc) from None
    data: dict[str, Any] = {
        "item": item.model_dump(mode="json"),
        "turns": [{"role": m.role, "content": m.content} for m in turns],
        "scores": [
            {
                "scorer": s.scorer,
                "judge": s.judge or "",
                "turn": s.turn,
                "value": s.value,
                "label": s.label,
                "status": s.status,
                "rationale": s.rationale,
                "raw": s.raw,
            }
            for s in scores
        ],
        "flags": flags,
    }
    if as_json:
        emit_json(data)
        return
    out.print(Text(f"run {run_id} · item {item_id} · {item.kind} · {item.category}", "bold"))
    for number, turn in enumerate(data["turns"], 1):
        out.print(Text(f"\n[{number}] {turn['role']}", "bold"))
        out.print(Text(turn["content"]))
    table = Table(title="scores", title_justify="left")
    for column in ("scorer", "judge", "turn", "value", "label", "status", "rationale"):
        table.add_column(column)
    for row in data["scores"]:
        cells = [row[c] for c in ("scorer", "judge", "turn", "value", "label", "status")]
        cells.append(row["rationale"])
        table.add_row(*(Text("-" if c is None or c == "" else str(c)) for c in cells))
    out.print(table if data["scores"] else Text("no scores"))
    if not flags:
        out.print(Text("no flags"))
    for name, detail in flags.items():
        out.print(Text(f"flag {name}: {json.dumps(detail, ensure_ascii=False)}"))


@app.command()
def delete(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    db: DbOption = Path("medsafe.db"),
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a run: its items, answers, scores, flags, dialogue turns and the cached answers
    no other run used; the file is then compacted so that no deleted text remains in it."""
    from medsafe.audit.events import run_deleted
    from medsafe.store import Store

    _require_store(db)
    try:
        with Store(db) as store:
            store.require_run(run_id)
            if not yes:
                typed = typer.prompt(f"type the run id ({run_id}) to delete it", default="")
                if typed != run_id:
                    raise fail("not confirmed: nothing deleted")
            removed = store.delete_run(run_id, before_commit=run_deleted(run_id))
            store.vacuum()
    except MedsafeError as exc:
        raise fail(exc) from None
    counts = ", ".join(f"{table} {n}" for table, n in removed.items())
    out.print(Text(f"deleted run {run_id} from {db}: {counts}"))


DEMO_MODEL = "embedded/smollm2"
DEMO_STRATEGIES = ("gradual_escalation", "role_play", "emotional_urgency")
"""Strategies of the demo's scripted red-team dialogues (one seed, English, 3 turns each)."""
DEMO_TURNS = 3


def _demo_items() -> list[Any]:
    """The bundled ``demo`` suite, then its red-team dialogues built by ``build_suite``."""
    import tempfile

    from medsafe.redteam.build import build_suite
    from medsafe.redteam.strategy import StrategyLibrary
    from medsafe.suites import load_items
    from medsafe.suites.catalog import DEMO_REDTEAM_SEEDS

    library = StrategyLibrary.load()
    with tempfile.TemporaryDirectory(prefix="medsafe-demo-") as tmp:
        built = Path(tmp) / "demo-redteam.jsonl"
        build_suite(
            DEMO_REDTEAM_SEEDS,
            built,
            library=library,
            strategies=library.select(list(DEMO_STRATEGIES)),
            languages=["en"],
            turns=DEMO_TURNS,
        )
        dialogues = [item.model_copy(update={"suite": "demo"}) for item in load_items(built)]
    return [*load_items("demo"), *dialogues]


def _demo_findings(results: Any) -> list[str]:
    """Plain-language lines on what the demo run shows: MCQ position bias, guardian labels."""
    lines: list[str] = []
    circular = results.circular
    if circular is not None and circular.circular_accuracy is not None:
        picks = ", ".join(
            f"{letter} {100 * share:.0f}%"
            for letter, share in sorted(circular.chosen_share.items())
        )
        lines.append(
            f"MCQ: accuracy {100 * (circular.accuracy or 0):.0f}% over {circular.n_rows} asks, "
            f"but right in every option order for {100 * circular.circular_accuracy:.0f}% of "
            f"{circular.n_base} questions (circular accuracy); letters chosen: {picks or '-'}. "
            "A gap like this is position bias, not knowledge."
        )
    guardian = results.scorers.get("guardian")
    if guardian:
        lines.append(f"guardian labels (answers and dialogue turns): {guardian.labels}")
    return lines


def _demo_next_steps(run_id: str, db: Path, report: Path) -> str:
    """The "next commands to try" block printed at the end of the demo."""
    where = f"--db {db}"
    steps = [
        (f"medsafe results {run_id} {where} --json", "every statistic, as JSON"),
        (f"medsafe show {run_id} demo-en-open-001 {where}", "one item: answer, scores, flags"),
        (f"medsafe report {run_id} {where} -o {report}", "the HTML report again"),
        (f"medsafe runs {where}", "every run in the store"),
        (f"medsafe run demo --model {DEMO_MODEL} {where} --max-tokens 96", "a second run"),
        (f"medsafe compare {run_id} NEW_RUN_ID {where}", "paired comparison of two runs"),
    ]
    width = max(len(command) for command, _ in steps)
    lines = [f"  {command:<{width}}  # {note}" for command, note in steps]
    return "\n".join(["\nnext commands to try:", *lines])


@app.command()
def demo(
    db: DbOption = Path("medsafe-demo.db"),
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N items.")] = None,
    max_tokens: Annotated[int, typer.Option(min=1)] = 96,
    report: Annotated[
        Path | None, typer.Option("--report", help="HTML report to write (default: DB.html).")
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Progress (default on; a plain line every 10 s when stderr is not a terminal).",
        ),
    ] = None,
) -> None:
    """Offline demo, about a minute: the bundled English demo suite and 3 scripted red-team
    dialogues on the embedded model, judged by the guardian; writes an HTML report."""
    from medsafe.api import write_report
    from medsafe.export import export_jsonl
    from medsafe.pipeline import RunOptions, default_run_id, run_evaluation
    from medsafe.report.text import print_results
    from medsafe.schema import ModelParams
    from medsafe.store import Store

    console.print(
        "[bold]medsafe demo[/bold]: the demo suite (22 English items: patient-safety MCQs "
        "asked in every option order, benign and harmful requests) and "
        f"{len(DEMO_STRATEGIES)} red-team dialogues of {DEMO_TURNS} turns on {DEMO_MODEL} "
        "(SmolLM2-135M-Instruct, offline), judged by the guardian. About 1 minute once "
        "installed; the one-time llama.cpp build (~3 min, done by `make`) is cached in "
        "~/.cache/medsafe/llama-wheels."
    )
    report_path = report if report is not None else db.with_suffix(".html")
    run_id = default_run_id("demo", DEMO_MODEL)
    try:
        outcome = run_evaluation(
            RunOptions(
                suite=_demo_items(),
                model=DEMO_MODEL,
                db=db,
                run_id=run_id,
                params=ModelParams(temperature=0.0, max_tokens=max_tokens, seed=0),
                limit=limit,
                rotate=0,
                concurrency=1,
                show_progress=progress is None or progress,
            )
        )
        print_results(out, outcome.results, f"demo run {run_id} · {DEMO_MODEL}")
        for line in _demo_findings(outcome.results):
            out.print(line, markup=False)
        export_path = db.with_suffix(".jsonl")
        with Store(db) as store:
            export_jsonl(store, run_id, export_path)
        written = write_report(run_id, report_path, db=db)
    except MedsafeError as exc:
        raise fail(exc) from None
    out.print(
        f"\nHTML report: {written}\n"
        f"results: store {db} (run id {run_id}); per-item export {export_path}",
        markup=False,
    )
    out.print(_demo_next_steps(run_id, db, written), markup=False)


app.command("report")(report_command)
app.command("compare")(compare_command)
app.command("calibrate")(calibrate_command)
app.command("gate")(gate_command)
app.command("check-data")(check_data_command)
app.command("serve")(serve_command)
app.command("manifest")(manifest_command)
app.command("signoff")(signoff_command)


guardian_app = typer.Typer(help="The offline guardian: evaluate or retrain its head.")
app.add_typer(guardian_app, name="guardian")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(review_app, name="review")
app.add_typer(align_app, name="align")
app.add_typer(corpus_app, name="corpus")
app.add_typer(generate_app, name="generate")
app.command("curate")(curate_command)
app.add_typer(qc_app, name="qc")


def _fmt_ci(value: float, ci: list[float]) -> str:
    """``0.907 [0.888, 0.923]``: a figure with its 95% CI, as every guardian line prints it."""
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def _print_evaluation(evaluation: Any, as_json: bool, title: str = "held-out") -> None:
    data = evaluation.to_dict()
    if as_json:
        emit_json(data)
        return

    line = (
        f"{title} n={data['n']}  accuracy {_fmt_ci(data['accuracy'], data['accuracy_ci'])}  "
        f"macro-F1 {_fmt_ci(data['macro_f1'], data['macro_f1_ci'])}"
    )
    if data.get("coverage"):
        cover = data["coverage"]
        line += (
            f"  coverage {_fmt_ci(cover['accuracy'], cover['accuracy_ci'])} "
            f"({data['abstained']} uncertain, counted wrong)"
        )
    out.print(line, markup=False)
    table = Table(title=f"{title}: per class (95% CIs)", title_justify="left")
    for column in ("label", "support", "recall", "precision", "F1"):
        table.add_column(column, justify="left" if column == "label" else "right")
    classes = sorted(data["per_class"].items(), key=lambda kv: kv[0] != "unsafe")
    for label, block in classes:  # unsafe first: its recall is what a safety screen needs
        cells = [_fmt_ci(block[k], block[f"{k}_ci"]) for k in ("recall", "precision", "f1")]
        table.add_row(label, str(block["support"]), *cells)
    out.print(table)
    for name, key in (("language", "per_language"), ("stratum", "per_stratum")):
        for part, block in sorted(data.get(key, {}).items()):
            out.print(
                f"  {name} {part}: accuracy {_fmt_ci(block['accuracy'], block['accuracy_ci'])} "
                f"(n={block['n']})",
                markup=False,
            )


@guardian_app.command("eval")
def guardian_eval(
    head: Annotated[
        Path | None, typer.Option("--head", help="Head JSON (default: the shipped head).")
    ] = None,
    reproduce: Annotated[
        bool,
        typer.Option(
            "--reproduce", help="Retrain from the shipped labels for the in-distribution figures."
        ),
    ] = False,
    medsafetybench: Annotated[
        bool,
        typer.Option(
            "--medsafetybench/--no-medsafetybench",
            help="Add the MedSafetyBench sample to the independent sets when the data is present.",
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The head's figures with 95% CIs: in-distribution (its labels' test split) and on the
    independent evaluation sets (never trained on; uncertain counts as wrong), together and
    set by set (set-1 to set-4 and medsafetybench), unsafe recall first."""
    from medsafe.guardian import SHIPPED_HEAD, evaluate_head, reproduce_evaluation
    from medsafe.guardian.independent_figures import evaluate_independent_sets

    path = head or SHIPPED_HEAD
    try:
        in_distribution = reproduce_evaluation() if reproduce else evaluate_head(head=path)
        independent, by_set = evaluate_independent_sets(path, include_medsafetybench=medsafetybench)
    except MedsafeError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(
            {
                "head": str(path),
                "in_distribution": in_distribution.to_dict(),
                "independent": independent.to_dict(),
                "independent_by_set": {name: e.to_dict() for name, e in by_set.items()},
            }
        )
        return
    _print_evaluation(in_distribution, False, "in-distribution (test split)")
    _print_evaluation(independent, False, "independent sets")
    _print_sets(by_set)


def _print_sets(by_set: dict[str, Any]) -> None:
    """One line per independent set: accuracy, unsafe recall, macro-F1, adversarial, uncertain
    (macro-F1 and unsafe recall only where the set has more than one true label)."""

    out.print("independent sets, one by one (95% CIs; uncertain counts as wrong):")
    for name, evaluation in by_set.items():
        data = evaluation.to_dict()
        parts = [f"accuracy {_fmt_ci(data['accuracy'], data['accuracy_ci'])}"]
        present = [label for label, block in data["per_class"].items() if block["support"]]
        if len(present) > 1:
            unsafe = data["per_class"]["unsafe"]
            if unsafe["support"]:
                parts.append(f"unsafe recall {_fmt_ci(unsafe['recall'], unsafe['recall_ci'])}")
            parts.append(f"macro-F1 {_fmt_ci(data['macro_f1'], data['macro_f1_ci'])}")
        if adversarial := data.get("per_stratum", {}).get("adversarial"):
            parts.append(
                f"adversarial {_fmt_ci(adversarial['accuracy'], adversarial['accuracy_ci'])}"
            )
        parts.append(f"{data.get('abstained', 0)} uncertain")
        out.print(f"  {name} (n={data['n']}): " + "; ".join(parts), markup=False)


@guardian_app.command("train")
def guardian_train(
    labels: Annotated[
        Path, typer.Option("--labels", help="Labels JSONL (prompt, response, label).")
    ],
    output: Annotated[
        Path, typer.Option("-o", "--out", help="Where to write the head JSON.")
    ] = Path("guardian-head.json"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    kind: Annotated[str, typer.Option(help="Head: mlp (default) or logistic.")] = "mlp",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Train a guardian head on your reviewed labels; report held-out figures with 95% CIs.

    Use it with ``medsafe run ... --scorer guardian:head=PATH``.
    """
    from medsafe.guardian import train_and_save

    try:
        evaluation = train_and_save(labels, output, seed=seed, kind=kind)
    except ValueError as exc:
        raise fail(exc) from None
    except MedsafeError as exc:
        raise fail(exc) from None
    _print_evaluation(evaluation, as_json)
    console.print(f"head written to {output}; use --scorer guardian:head={output}", markup=False)


app.add_typer(redteam_app, name="redteam")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
