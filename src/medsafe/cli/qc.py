"""``medsafe qc inject``: build a labelled report-QC benchmark by injecting the eight error
types into clean radiology reports (docs/imaging.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from medsafe.cli.dboption import DB_HELP, db_location
from medsafe.exits import fail

if TYPE_CHECKING:
    from medsafe.review.model import LabelSchema

qc_app = typer.Typer(help="Report quality control: error injection.", no_args_is_help=True)
err = Console(stderr=True, highlight=False)


@qc_app.command("inject")
def inject_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Detection suite to write (JSONL).")],
    truth: Annotated[
        Path, typer.Option("--truth", help="Ground-truth file to write (JSONL, one per error).")
    ],
    n: Annotated[int, typer.Option("--n", min=1, help="Clean reports to start from.")] = 200,
    language: Annotated[
        str, typer.Option("--language", help="Report languages, comma-separated: zh, ja, en.")
    ] = "zh,en",
    types: Annotated[
        str | None,
        typer.Option("--types", help="Error type ids, comma-separated (default: all eight)."),
    ] = None,
    clean: Annotated[
        bool, typer.Option("--clean/--no-clean", help="Also write each report without errors.")
    ] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of sizes, sides and positions.")] = 0,
) -> None:
    """Write N clean reports with each error type injected, and the ground truth of each."""
    from medsafe.errors import MedsafeError
    from medsafe.imaging.inject import INJECTORS, inject_all
    from medsafe.imaging.reports import clean_reports
    from medsafe.outputs import staged, stderr_note
    from medsafe.schema import LANGUAGES, Language

    wanted = [x.strip() for x in language.split(",") if x.strip()]
    bad = [x for x in wanted if x not in LANGUAGES]
    if bad or not wanted:
        raise fail(f"--language: expected zh, ja and/or en, got {language!r}")
    chosen = tuple(x for x in LANGUAGES if x in wanted)
    langs: tuple[Language, ...] = chosen
    type_ids = tuple(t.strip() for t in types.split(",") if t.strip()) if types else None
    unknown = sorted(set(type_ids or ()) - set(INJECTORS))
    if unknown:
        raise fail(f"--types: unknown {', '.join(unknown)} (known: {', '.join(INJECTORS)})")
    items = errors = 0
    try:
        with (
            staged(out, stderr_note) as suite_tmp,
            staged(truth, stderr_note) as truth_tmp,
            suite_tmp.open("w", encoding="utf-8") as suite_f,
            truth_tmp.open("w", encoding="utf-8") as truth_f,
        ):
            reports = clean_reports(n, langs, seed)
            for item, record in inject_all(reports, type_ids, clean=clean, seed=seed):
                suite_f.write(json.dumps(item, ensure_ascii=False) + "\n")
                items += 1
                if record is not None:
                    truth_f.write(json.dumps(record, ensure_ascii=False) + "\n")
                    errors += 1
    except (MedsafeError, ValueError) as exc:
        raise fail(exc) from None
    err.print(
        f"wrote {items} items ({n} reports, {errors} injected errors) to {out}; "
        f"ground truth in {truth}; licence CC-BY-4.0",
        markup=False,
    )


CONFIRM_CHOICES = (
    ("confirmed", 1.0, "a real error the reference missed"),
    ("rejected", 0.0, "not an error"),
    ("not_flagged", None, "the model did not flag this label here"),
)


def discovery_schema(labels: list[str]) -> LabelSchema:
    """The review schema of an additional-discovery task: one field per flagged label."""
    from medsafe.results.detection import CONFIRMED
    from medsafe.review.model import Choice, LabelField, LabelSchema
    from medsafe.scorers.detection import CONFIRMED_SCALE

    choices = tuple(Choice(key=k, value=v, label=t) for k, v, t in CONFIRM_CHOICES)
    return LabelSchema(
        name="additional-discovery",
        scorer=CONFIRMED,
        fields=tuple(
            LabelField(
                name=label,
                title=f"Flagged beyond the reference: {label}",
                kind="categorical",
                choices=choices,
            )
            for label in labels
        ),
        aggregate="mean",
        scale=CONFIRMED_SCALE,
    )


@qc_app.command("discoveries")
def discoveries_command(
    run_id: Annotated[str, typer.Argument(help="The run whose detection answers to review.")],
    reviewer: Annotated[
        list[str], typer.Option("--reviewer", help="A reviewer (repeat; at least k).")
    ],
    db: Annotated[Path, typer.Option("--db", help=DB_HELP, callback=db_location)] = Path(
        "medsafe.db"
    ),
    k: Annotated[int, typer.Option("--k", min=1, help="Reviewers per unit.")] = 2,
    actor: Annotated[str, typer.Option("--as", help="Who creates the task (audited).")] = "admin",
) -> None:
    """Create a review task of the labels a model flagged beyond the reference (additional
    discoveries); its final labels feed the confirmed rate in ``results``."""
    from medsafe.errors import MedsafeError, StoreError
    from medsafe.results.detection import flagged_units
    from medsafe.review.tasks import create_task
    from medsafe.store.sqlite import Store

    if not db.is_file():
        raise fail(StoreError(f"{db}: no such store"))
    try:
        with Store(db) as store:
            conn = store.connection
            store.require_run(run_id)
            units = flagged_units(conn, run_id)
            if not units:
                raise fail(f"run {run_id}: no detection answer flags a label beyond the reference")
            labels = sorted({label for found in units.values() for label in found})
            schema = discovery_schema(labels)
            task = create_task(
                conn,
                run_id=run_id,
                sample="ids:" + ",".join(sorted(units)),
                schema=schema,
                reviewers=reviewer,
                actor=actor,
                k=k,
                required=False,
            )
    except MedsafeError as exc:
        raise fail(exc) from None
    flagged = sum(len(v) for v in units.values())
    typer.echo(
        f"task {task.task_id}: {len(units)} items, {flagged} flagged labels, "
        f"{len(labels)} label fields, {k} reviewer(s) each; export it with "
        f"'medsafe review export {task.task_id}' or label it in the workbench"
    )
