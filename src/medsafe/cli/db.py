"""``medsafe db copy``: move runs between stores (a SQLite file and a PostgreSQL database)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from medsafe.cli.dboption import db_location, require_store
from medsafe.errors import MedsafeError
from medsafe.exits import fail

db_app = typer.Typer(
    help="Stores: copy runs between SQLite files and PostgreSQL databases.",
    no_args_is_help=True,
)

_out = Console(highlight=False, soft_wrap=True)

StoreArg = Annotated[
    Path,
    typer.Argument(
        help="A SQLite file or postgresql://USER@HOST:PORT/DBNAME.", callback=db_location
    ),
]


@db_app.command("copy")
def copy_command(
    source: StoreArg,
    target: StoreArg,
    run: Annotated[
        list[str] | None, typer.Option("--run", help="Copy only this run (repeatable).")
    ] = None,
) -> None:
    """Copy runs (default: all) with their items, transcripts, scores, dialogue turns, flags
    and request cache, in one transaction; then check each run's content hash is the same on
    both sides and record the copy in the target's audit chain."""
    from medsafe.audit.chain import append
    from medsafe.audit.content import run_content_hash
    from medsafe.audit.events import cli_actor
    from medsafe.store import Store
    from medsafe.store.copy import copy_runs
    from medsafe.store.pg import redacted

    require_store(source)
    if redacted(source) == redacted(target):
        raise fail("source and target are the same store")
    try:
        with Store(source) as src, Store(target) as dst:
            copied = copy_runs(src, dst, run or ())
            table = Table(title=f"copied to {redacted(target)}")
            for name in ("run", "items", "transcripts", "scores", "turns", "flags", "cache"):
                table.add_column(name, justify="left" if name == "run" else "right")
            table.add_column("content hash")
            for done in copied:
                before = run_content_hash(src.connection, done.run_id)
                after = run_content_hash(dst.connection, done.run_id)
                if before != after:
                    raise fail(
                        f"run {done.run_id!r}: content hash differs after the copy "
                        f"({before[:12]} → {after[:12]}); the copy is kept for inspection"
                    )
                append(
                    dst.connection,
                    cli_actor(),
                    "run_copy",
                    done.run_id,
                    {"from": redacted(source), "rows": done.rows, "cache": done.cache,
                     "content_hash": after},
                )  # fmt: skip
                r = done.rows
                table.add_row(
                    done.run_id, str(r["items"]), str(r["transcripts"]), str(r["scores"]),
                    str(r["dialogue_turns"]), str(r["flags"]), str(done.cache),
                    f"{after[:12]} (same)",
                )  # fmt: skip
    except MedsafeError as exc:
        raise fail(exc) from None
    _out.print(table)
