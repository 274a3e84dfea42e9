"""``medsafe audit verify`` and ``medsafe audit export``: check and dump the audit chain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from medsafe.cli.dboption import DB_HELP, db_location, require_store
from medsafe.errors import MedsafeError
from medsafe.exits import fail

audit_app = typer.Typer(
    help="The audit trail: verify its hash chain, export it.", no_args_is_help=True
)

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

NOT_INTACT = 1
"""Exit status of ``audit verify`` (and ``manifest verify``) when the check fails."""

DbOption = Annotated[Path, typer.Option("--db", help=DB_HELP, callback=db_location)]


def _require(db: Path) -> None:
    require_store(db)


@audit_app.command("verify")
def verify_command(db: DbOption = Path("medsafe.db")) -> None:
    """Recompute the audit chain; exit 1 naming the first broken entry if a row was edited,
    inserted or deleted, or the tail was cut off (seen against the sign-offs' heads)."""
    from medsafe.audit.chain import verify
    from medsafe.store import Store

    _require(db)
    try:
        with Store(db) as store:
            report = verify(store.connection)
    except MedsafeError as exc:
        raise fail(exc) from None
    if report.ok:
        _out.print(Text(f"audit chain intact: {report.reason} ({db})"))
        return
    first = f"; first broken entry: seq {report.first_broken}" if report.first_broken else ""
    _out.print(
        Text.assemble(
            ("audit chain BROKEN", "bold red"),
            f" ({db}): {report.reason}{first} ({report.n} entries verified before it)",
        )
    )
    raise typer.Exit(NOT_INTACT)


@audit_app.command("export")
def export_command(
    db: DbOption = Path("medsafe.db"),
    output: Annotated[
        Path, typer.Option("-o", "--output", help="JSONL file to write; - for standard output.")
    ] = Path("-"),
) -> None:
    """Write every audit entry as one JSON object per line (seq order), with its hashes."""
    from medsafe.audit.chain import export
    from medsafe.outputs import check_output, open_text, stderr_note
    from medsafe.store import Store

    _require(db)
    try:
        check_output(output)
        with Store(db) as store, open_text(output, stderr_note) as handle:
            n = 0
            for row in export(store.connection):
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
    except MedsafeError as exc:
        raise fail(exc) from None
    if str(output) != "-":
        _err.print(Text(f"wrote {n} audit entries to {output}"))
