"""``medsafe calibrate`` (registered on the main typer app in medsafe.cli)."""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from medsafe.cli.dboption import db_location
from medsafe.errors import MedsafeError
from medsafe.exits import fail
from medsafe.formatting import emit_json, with_ci

_err = Console(stderr=True)
_out = Console(highlight=False)


def class_name(label: str) -> str:
    """A class as its label: a whole-number score class ``"1.0"`` shows as ``"1"``."""
    try:
        value = float(label)
    except ValueError:
        return label
    return str(int(value)) if value.is_integer() else label


def _print(result: dict[str, Any]) -> None:
    _out.print(
        f"[bold]{result['scorer']}[/bold] judge {result['judge']} "
        f"(version {result['scorer_version']}) on {result['n_rows']} labelled rows; "
        f"settled {result['n']}, failed {result['failed']}"
    )
    lines = [
        f"accuracy {with_ci(result['accuracy'], result['ci95'])}",
        f"kappa {with_ci(result.get('kappa'), result.get('kappa_ci95'))}",
        f"macro-F1 {with_ci(result.get('macro_f1'), result.get('macro_f1_ci95'))}",
    ]
    if result.get("mae") is not None:
        lines.append(f"MAE {with_ci(result['mae'], result.get('mae_ci95'))}")
    _out.print("  ".join(lines))
    table = Table(
        title="per class (95% CIs: Wilson for precision and recall, bootstrap for F1)",
        title_justify="left",
    )
    for column in ("class", "support", "precision", "recall", "F1"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for label, block in result["per_class"].items():
        cells = [
            f"{with_ci(block[k], block[f'{k}_ci95'])} n={block[f'{k}_n']}"
            if f"{k}_n" in block
            else with_ci(block[k], block[f"{k}_ci95"])
            for k in ("precision", "recall", "f1")
        ]
        table.add_row(Text(class_name(label)), str(block["support"]), *cells)
    _out.print(table)
    detection = result.get("detection")
    if detection:
        _out.print(
            f"harmful = {detection['positive']}: sensitivity "
            f"{with_ci(detection['sensitivity'], detection['sensitivity_ci95'])} "
            f"(n={detection['n_pos']}), specificity "
            f"{with_ci(detection['specificity'], detection['specificity_ci95'])} "
            f"(n={detection['n_neg']})"
        )
    if result["failure_causes"]:
        _out.print(f"failures: {result['failure_causes']}")


def _labels_source(
    scorer: str | None, labels: Path | None, from_task: str | None, db: Path
) -> tuple[str, Path, TemporaryDirectory[str] | None]:
    """The scorer and labels file to calibrate on: as given, or a review task's final labels
    (written to a temporary file; the task's scorer unless ``--scorer`` names one)."""
    from medsafe.errors import ConfigError

    if (labels is None) == (from_task is None):
        raise ConfigError("give one of --labels FILE or --from-task TASK")
    if from_task is None:
        if scorer is None:
            raise ConfigError("--scorer NAME[:MODEL] is required with --labels")
        assert labels is not None
        return scorer, labels, None
    from medsafe.review.exports import calibrate_rows, write_jsonl
    from medsafe.review.tasks import get_task
    from medsafe.store.sqlite import Store

    if not db.is_file():
        raise ConfigError(f"--from-task: {db}: no such store")
    with Store(db) as store:
        task = get_task(store.connection, from_task)
        rows = calibrate_rows(store.connection, from_task)
    if not rows:
        raise ConfigError(f"review task {from_task} has no final label yet")
    tmp = TemporaryDirectory(prefix="medsafe-calibrate-")
    path = Path(tmp.name) / f"{from_task}.jsonl"
    write_jsonl(rows, path)
    return scorer or task.label_schema.scorer, path, tmp


def calibrate_command(
    scorer: Annotated[
        str | None,
        typer.Option(
            "--scorer",
            help="NAME[:MODEL], e.g. guardian or harmfulness:judge-a (default with --from-task: "
            "the task's scorer).",
        ),
    ] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="JSONL: prompt, response, and label or score.")
    ] = None,
    from_task: Annotated[
        str | None,
        typer.Option("--from-task", help="Use the final labels of this review task (in --db)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help=escape("TOML file with [models.NAME] entries."))
    ] = None,
    positive: Annotated[
        str | None,
        typer.Option(help="What counts as harmful: labels (unsafe) or a threshold (>=4, <5)."),
    ] = None,
    db: Annotated[
        Path,
        typer.Option(
            "--db", help="Store the calibration in this results store.", callback=db_location
        ),
    ] = Path("medsafe.db"),
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not store it.")] = False,
    concurrency: Annotated[int, typer.Option(min=1, help="Judge requests in flight.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Measure a judge against human labels: accuracy, kappa, per-class P/R/F1, MAE, 95% CIs.

    The result is stored with the judge's id in --db; ``medsafe results`` and ``medsafe report``
    then show it beside that judge's scores, with the judge-error-corrected harmful rate.
    """
    from medsafe.calibrate import calibrate
    from medsafe.judges.build import parse_judge_arg

    tmp: TemporaryDirectory[str] | None = None
    try:
        scorer, labels, tmp = _labels_source(scorer, labels, from_task, db)
        name, ref = parse_judge_arg(scorer)
        result = calibrate(
            name,
            ref,
            labels,
            config_path=config,
            positive=positive,
            db=None if no_store else db,
            concurrency=concurrency,
        )
    except MedsafeError as exc:
        raise fail(exc) from None
    finally:
        if tmp is not None:
            tmp.cleanup()
    if as_json:
        emit_json(result)
    else:
        _print(result)
        if not no_store:
            _err.print(f"stored in {db}; `medsafe results RUN --db {db}` shows it", markup=False)
