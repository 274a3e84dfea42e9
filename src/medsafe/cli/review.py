"""``medsafe review`` (tasks, labels from the command line or a review file, agreement,
exports) and ``medsafe signoff`` -- the same actions as the workbench's pages, for when the
server is not running."""

from __future__ import annotations

import getpass
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from medsafe.cli.dboption import DB_HELP, db_location
from medsafe.errors import MedsafeError
from medsafe.exits import fail
from medsafe.formatting import emit_json

review_app = typer.Typer(
    help="Review tasks: create, label, adjudicate, status and agreement, review files, exports.",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

DbOption = Annotated[Path, typer.Option("--db", help=DB_HELP, callback=db_location)]
AsOption = Annotated[str, typer.Option("--as", help="Who does it (recorded in the audit trail).")]
ValueOption = Annotated[
    list[str],
    typer.Option("--value", help="FIELD=CHOICE (repeat per field); a scale's field is 'verdict'."),
]


@contextmanager
def _conn(db: Path) -> Iterator[sqlite3.Connection]:
    from medsafe.errors import StoreError
    from medsafe.store.sqlite import Store

    if not db.is_file():
        raise StoreError(f"{db}: no such store")
    with Store(db) as store:
        yield store.connection


def _values(pairs: list[str], schema_fields: list[str]) -> dict[str, str]:
    from medsafe.errors import ConfigError

    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, key = pair.partition("=")
        if not sep:
            if len(schema_fields) != 1:
                raise ConfigError(f"--value {pair!r}: expected FIELD=CHOICE")
            name, key = schema_fields[0], pair
        values[name.strip()] = key.strip()
    return values


def _cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


@review_app.command("create")
def create_command(
    run_id: Annotated[str, typer.Argument(help="The run to review.")],
    sample: Annotated[
        str,
        typer.Option(
            help="flagged[:FLAG,..] | guardian:unsafe,unusable,uncertain | stratified:N | ids:A,B"
        ),
    ],
    reviewer: Annotated[list[str], typer.Option("--reviewer", help="A reviewer (repeat).")],
    db: DbOption = Path("medsafe.db"),
    scale: Annotated[
        str | None, typer.Option(help="Label with this scorer's declared scale (e.g. guardian).")
    ] = None,
    rubric: Annotated[
        str | None, typer.Option(help="Label with a rubric: a JSON file, or 'medes'.")
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Reviewers per unit.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the stratified sample.")] = 0,
    margin: Annotated[
        float, typer.Option(min=0, help="Ordinal labels further apart disagree.")
    ] = 0.0,
    optional: Annotated[
        bool, typer.Option("--optional", help="A sign-off need not wait for this task.")
    ] = False,
    actor: Annotated[str | None, typer.Option("--as", help="Who creates it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a review task over a run's units (k reviewers each, balanced)."""
    from medsafe.errors import ConfigError
    from medsafe.results import run_scales
    from medsafe.review.model import load_rubric, schema_from_scale
    from medsafe.review.tasks import create_task
    from medsafe.store.sqlite import Store

    try:
        if (scale is None) == (rubric is None):
            raise ConfigError("give one of --scale SCORER or --rubric FILE|medes")
        with _conn(db) as conn:
            if rubric is not None:
                schema = load_rubric(Path(rubric))
            else:
                assert scale is not None
                with Store(db) as store:
                    record = store.require_run(run_id)
                scales = run_scales(record.spec, {scale})
                if scale not in scales:
                    known = ", ".join(sorted(scales)) or "none"
                    raise ConfigError(
                        f"--scale {scale!r}: run {run_id} declares no such scale ({known})"
                    )
                schema = schema_from_scale(scale, scales[scale])
            task = create_task(conn, run_id=run_id, sample=sample, schema=schema,
                               reviewers=reviewer, actor=actor or _cli_actor(), k=k, seed=seed,
                               margin=margin, required=not optional)  # fmt: skip
            n = conn.execute(
                "SELECT COUNT(*) FROM review_units WHERE task_id=?", (task.task_id,)
            ).fetchone()[0]
    except MedsafeError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json({"task_id": task.task_id, "n_units": n, **task.model_dump(mode="json")})
        return
    out.print(Text(f"created {task.task_id}: {n} units of run {run_id}, {k} reviewers each "
                   f"({', '.join(reviewer)}), labels: {schema.name}"))  # fmt: skip
    out.print(Text(f"next: medsafe review export {task.task_id} -o task.jsonl --db {db}"))


@review_app.command("list")
def list_command(
    run_id: Annotated[str | None, typer.Argument(help="Only this run's tasks.")] = None,
    db: DbOption = Path("medsafe.db"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List review tasks with their progress."""
    from medsafe.review.tasks import list_tasks

    try:
        with _conn(db) as conn:
            rows = list_tasks(conn, run_id)
    except MedsafeError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json([{"task_id": r.spec.task_id, "run_id": r.spec.run_id, "status": r.status,
                    "n_units": r.n_units, "n_final": r.n_final, "created": r.created,
                    "created_by": r.created_by} for r in rows])  # fmt: skip
        return
    table = Table("task", "run", "labels", "units final", "status", "created by")
    for r in rows:
        table.add_row(Text(r.spec.task_id), Text(r.spec.run_id), Text(r.spec.label_schema.name),
                      f"{r.n_final}/{r.n_units}", r.status, Text(r.created_by))  # fmt: skip
    out.print(table)


def status_data(conn: sqlite3.Connection, task_id: str, n_resamples: int) -> dict[str, Any]:
    """Progress, per-reviewer counts and agreement of a task, as JSON."""
    from medsafe.review.agreement import task_agreement
    from medsafe.review.tasks import get_task, progress

    task = get_task(conn, task_id)
    prog = progress(conn, task)
    fields = task_agreement(conn, task, n_resamples=n_resamples)
    return {
        "task_id": task.task_id,
        "run_id": task.run_id,
        "complete": prog.complete,
        "units": prog.n_units,
        "final": prog.n_final,
        "agreed": prog.n_agreed,
        "adjudicated": prog.n_adjudicated,
        "waiting_adjudication": prog.n_queue,
        "labels": prog.n_labels,
        "labels_expected": prog.n_expected,
        "reviewers": {r: {"labelled": d, "assigned": a} for r, (d, a) in prog.per_reviewer.items()},
        "agreement": {f.field: {**f.stats, "pairs": [p.__dict__ for p in f.pairs]} for f in fields},
    }


def _ci(block: Any) -> str:
    value, (lo, hi) = block["value"], block["ci95"]
    if value is None:
        return "n/a"
    if lo is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{lo:.3f}, {hi:.3f}]"


@review_app.command("status")
def status_command(
    task_id: Annotated[str, typer.Argument(help="The task.")],
    db: DbOption = Path("medsafe.db"),
    resamples: Annotated[int, typer.Option(min=1, help="Bootstrap resamples.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Progress, per-reviewer counts and agreement (Fleiss' kappa, Gwet's AC1, Krippendorff's
    alpha with bootstrap 95% CIs; Cohen's kappa per reviewer pair)."""
    try:
        with _conn(db) as conn:
            data = status_data(conn, task_id, resamples)
    except MedsafeError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(data)
        return
    out.print(Text(f"{data['task_id']}: {data['final']}/{data['units']} units final "
                   f"({data['agreed']} agreed, {data['adjudicated']} adjudicated), "
                   f"{data['waiting_adjudication']} waiting for adjudication; labels "
                   f"{data['labels']}/{data['labels_expected']}"))  # fmt: skip
    for who, counts in data["reviewers"].items():
        out.print(Text(f"  {who}: {counts['labelled']}/{counts['assigned']} labelled"))
    for name, block in data["agreement"].items():
        out.print(Text(
            f"{name} (n={block['n_units']} units): agreement {_ci(block['percent_agreement'])}, "
            f"Fleiss' kappa {_ci(block['fleiss_kappa'])}, Gwet's AC1 {_ci(block['gwet_ac1'])}, "
            f"Krippendorff's alpha ({block['alpha_level']}) {_ci(block['krippendorff_alpha'])}"
        ))  # fmt: skip
        for p in block["pairs"]:
            kappa = "n/a" if p["kappa"] is None else f"{p['kappa']:.3f}"
            out.print(Text(f"  {p['a']} vs {p['b']}: Cohen's kappa {kappa} (n={p['n']})"))


@review_app.command("export")
def export_command(
    task_id: Annotated[str, typer.Argument(help="The task.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The review file (JSONL).")],
    db: DbOption = Path("medsafe.db"),
    for_reviewer: Annotated[
        str | None, typer.Option("--for", help="Blinded: only this reviewer's units and labels.")
    ] = None,
) -> None:
    """Write the task's review file (format medsafe-review/1)."""
    from medsafe.review.files import write_file

    try:
        with _conn(db) as conn:
            n = write_file(conn, task_id, output, for_reviewer)
    except MedsafeError as exc:
        raise fail(exc) from None
    err.print(Text(f"wrote {output} ({n} lines)"))


@review_app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="A review file with label/adjudication lines.")],
    db: DbOption = Path("medsafe.db"),
) -> None:
    """Add a review file's labels and adjudications to its task."""
    from medsafe.review.files import import_file

    try:
        with _conn(db) as conn:
            counts = import_file(conn, path)
    except MedsafeError as exc:
        raise fail(exc) from None
    out.print(Text(f"imported {counts['labels']} labels, {counts['adjudications']} "
                   f"adjudications ({counts['unchanged']} already stored)"))  # fmt: skip


def _decide(
    action: Literal["label", "adjudicate"],
    task_id: str,
    item_id: str,
    actor: str,
    value: list[str],
    rationale: str,
    db: Path,
) -> None:
    from medsafe.review.tasks import adjudicate, get_task, submit_label

    try:
        with _conn(db) as conn:
            task = get_task(conn, task_id)
            values = _values(value, [f.name for f in task.label_schema.fields])
            do = submit_label if action == "label" else adjudicate
            do(conn, task_id, item_id, actor, values, rationale)
    except MedsafeError as exc:
        raise fail(exc) from None
    out.print(Text(f"{action}: {task_id}/{item_id} by {actor}: {json.dumps(values)}"))


@review_app.command("label")
def label_command(
    task_id: Annotated[str, typer.Argument()],
    item_id: Annotated[str, typer.Argument()],
    actor: AsOption,
    value: ValueOption,
    rationale: Annotated[str, typer.Option(help="Why.")] = "",
    db: DbOption = Path("medsafe.db"),
) -> None:
    """Label one unit assigned to you."""
    _decide("label", task_id, item_id, actor, value, rationale, db)


@review_app.command("adjudicate")
def adjudicate_command(
    task_id: Annotated[str, typer.Argument()],
    item_id: Annotated[str, typer.Argument()],
    actor: AsOption,
    value: ValueOption,
    rationale: Annotated[str, typer.Option(help="Why.")] = "",
    db: DbOption = Path("medsafe.db"),
) -> None:
    """Decide a unit whose reviewers disagree (not one you labelled)."""
    _decide("adjudicate", task_id, item_id, actor, value, rationale, db)


@review_app.command("labels")
def labels_command(
    task_id: Annotated[str, typer.Argument(help="The task.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSONL file to write.")],
    fmt: Annotated[
        str, typer.Option("--format", help="calibrate (medsafe calibrate --labels) or guardian.")
    ] = "calibrate",
    db: DbOption = Path("medsafe.db"),
) -> None:
    """Export the task's final labels for ``medsafe calibrate`` or ``medsafe guardian train``."""
    from medsafe.errors import ConfigError
    from medsafe.review.exports import calibrate_rows, guardian_rows, write_jsonl

    try:
        with _conn(db) as conn:
            if fmt == "calibrate":
                rows, skipped = calibrate_rows(conn, task_id), 0
            elif fmt == "guardian":
                rows, skipped = guardian_rows(conn, task_id)
            else:
                raise ConfigError(f"--format {fmt!r}: expected calibrate or guardian")
        if not rows:
            raise ConfigError(f"task {task_id} has no final label to export yet")
        write_jsonl(rows, output)
    except MedsafeError as exc:
        raise fail(exc) from None
    note = f" ({skipped} left out: uncertain, no ama-N category or no intent)" if skipped else ""
    err.print(Text(f"wrote {output}: {len(rows)} labels{note}"))


def signoff_command(
    run_id: Annotated[str, typer.Argument(help="The run.")],
    decision: Annotated[str, typer.Option(help="approve or reject.")],
    actor: AsOption,
    comment: Annotated[str, typer.Option(help="Comment.")] = "",
    conditions: Annotated[str, typer.Option(help="Conditions of the approval.")] = "",
    db: DbOption = Path("medsafe.db"),
) -> None:
    """Approve or reject a run (an auditor who reviewed none of its units; its required
    review tasks complete). Records the run's content hash and the audit chain's head."""
    from medsafe.errors import ConfigError
    from medsafe.review.signoff import sign_off

    try:
        if decision not in ("approve", "reject"):
            raise ConfigError(f"--decision {decision!r}: expected approve or reject")
        with _conn(db) as conn:
            signed = sign_off(conn, run_id, actor, decision, comment, conditions)  # type: ignore[arg-type]
    except MedsafeError as exc:
        raise fail(exc) from None
    note = f"content {signed.content_hash[:16]}, audit entry {signed.audit_head[:16]}"
    out.print(Text(f"{signed.decision} {run_id} by {signed.actor} at {signed.ts}; {note}"))
