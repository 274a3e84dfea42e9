"""``medsafe serve``: the review workbench over a store (uvicorn, loopback by default)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from medsafe.cli.dboption import DB_HELP, db_location
from medsafe.errors import MedsafeError
from medsafe.exits import fail

err = Console(stderr=True, highlight=False, soft_wrap=True)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1 or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve_command(
    db: Annotated[Path, typer.Option("--db", help=DB_HELP, callback=db_location)] = Path(
        "medsafe.db"
    ),
    host: Annotated[
        str, typer.Option(help="Address to bind; 127.0.0.1 (this machine only) by default.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8765,
    secure_cookies: Annotated[
        bool,
        typer.Option(
            "--secure-cookies", help="Mark cookies Secure (set it when a TLS proxy fronts it)."
        ),
    ] = False,
) -> None:
    """Serve the review workbench (browse runs, review, sign off) on HOST:PORT."""
    import uvicorn

    from medsafe.web.app import create_app

    if not db.is_file():
        raise fail(f"{db}: no such store (create users first: medsafe users add NAME --role ...)")
    try:
        app = create_app(db, secure_cookies=secure_cookies, warm_results=True)
    except MedsafeError as exc:
        raise fail(exc) from None
    shown = f"[{host}]" if ":" in host else host
    err.print(Text(f"medsafe workbench on http://{shown}:{port}/ (store {db})"))
    if is_loopback(host):
        err.print(
            Text(
                "bound to loopback: reachable from this machine only. To serve others, put a "
                "TLS reverse proxy in front (docs/workbench.md) and pass --secure-cookies."
            )
        )
    else:
        err.print(
            Text(
                f"warning: bound to {host}, not loopback: anyone who can reach this address "
                "gets the login page over plain HTTP. Prefer --host 127.0.0.1 behind a TLS "
                "reverse proxy (docs/workbench.md).",
                style="yellow",
            )
        )
    # X-Forwarded-For is trusted from 127.0.0.1 only (uvicorn's default): the local TLS proxy
    # names the client, so the login back-off counts per real client address
    uvicorn.run(app, host=host, port=port, log_level="warning")
