"""``medsafe users``: the workbench's accounts (add, list, disable, enable, reset)."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from medsafe.cli.dboption import DB_HELP, db_location
from medsafe.errors import MedsafeError
from medsafe.exits import fail

if TYPE_CHECKING:
    from medsafe.store.sqlite import Store

users_app = typer.Typer(
    help="Workbench accounts: add, list, disable, enable, reset.", no_args_is_help=True
)
out = Console(highlight=False)

DbOption = Annotated[Path, typer.Option("--db", help=DB_HELP, callback=db_location)]
RolesOption = Annotated[
    list[str],
    typer.Option(
        "--role", help="admin, reviewer, adjudicator, auditor or viewer (repeat for several)."
    ),
]
StdinOption = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin (one line).")
]

ACTOR = "cli"
"""Who the audit trail records for changes made from the command line (plus the OS user)."""


def _actor() -> str:
    try:
        return f"{ACTOR}:{getpass.getuser()}"
    except (KeyError, OSError):
        return ACTOR


def _password(from_stdin: bool) -> str:
    """The new password: one line of stdin, or typed twice at a prompt (not echoed)."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise fail("--password-stdin: stdin held no password")
        return line
    if not sys.stdin.isatty():
        raise fail("no terminal to ask the password on: use --password-stdin")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise fail("the two passwords differ")
    if not first:
        raise fail("the password is empty")
    return first


def _store(db: Path, *, create: bool = False) -> Store:
    from medsafe.store.sqlite import Store

    if not create and not db.is_file():
        raise fail(f"{db}: no such store")
    try:
        return Store(db)
    except MedsafeError as exc:
        raise fail(exc) from None


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: RolesOption,
    db: DbOption = Path("medsafe.db"),
    password_stdin: StdinOption = False,
    language: Annotated[str, typer.Option(help="Interface language: en, zh or ja.")] = "en",
) -> None:
    """Create an account (the store is created if it does not exist)."""
    from medsafe.web.auth import LANGUAGES, add_user, check_roles, check_username

    try:
        check_roles(role)
        check_username(name)
    except MedsafeError as exc:
        raise fail(exc) from None
    lang = next((code for code in LANGUAGES if code == language), None)
    if lang is None:
        raise fail(f"--language {language!r}: use en, zh or ja")
    password = _password(password_stdin)
    with _store(db, create=True) as store:
        try:
            user = add_user(store.connection, name, password, role, actor=_actor(), language=lang)
        except MedsafeError as exc:
            raise fail(exc) from None
    out.print(Text(f"added {user.username} ({', '.join(sorted(user.roles))}) to {db}"))


@users_app.command("list")
def list_(db: DbOption = Path("medsafe.db")) -> None:
    """Every account: name, roles, language, state, created."""
    from medsafe.store.accounts import list_users

    with _store(db) as store:
        rows = list_users(store.connection)
    table = Table(title=Text(f"users in {db}"), title_justify="left")
    for column in ("user", "roles", "language", "state", "created"):
        table.add_column(column)
    for row in rows:
        state = "disabled" if row.disabled else "active"
        table.add_row(
            Text(row.username), ", ".join(sorted(row.roles)), row.language, state, row.created
        )
    out.print(table)


def _set_disabled(name: str, db: Path, disabled: bool) -> None:
    from medsafe.web.auth import set_disabled

    with _store(db) as store:
        try:
            set_disabled(store.connection, name, disabled, actor=_actor())
        except MedsafeError as exc:
            raise fail(exc) from None
    state = "disabled (its sessions ended)" if disabled else "enabled"
    out.print(Text(f"{name}: {state}"))


@users_app.command("disable")
def disable(
    name: Annotated[str, typer.Argument(help="User name.")], db: DbOption = Path("medsafe.db")
) -> None:
    """Refuse an account's logins and end its sessions (its records stay)."""
    _set_disabled(name, db, True)


@users_app.command("enable")
def enable(
    name: Annotated[str, typer.Argument(help="User name.")], db: DbOption = Path("medsafe.db")
) -> None:
    """Allow a disabled account to log in again."""
    _set_disabled(name, db, False)


@users_app.command("reset")
def reset(
    name: Annotated[str, typer.Argument(help="User name.")],
    db: DbOption = Path("medsafe.db"),
    role: Annotated[
        list[str] | None, typer.Option("--role", help="Replace the roles (repeat for several).")
    ] = None,
    password_stdin: StdinOption = False,
    keep_password: Annotated[
        bool, typer.Option("--keep-password", help="Change only the roles.")
    ] = False,
) -> None:
    """Set a new password (and/or roles); ends the user's sessions and clears its back-off."""
    from medsafe.web.auth import reset_user

    if keep_password and not role:
        raise fail("--keep-password changes nothing without --role")
    password = None if keep_password else _password(password_stdin)
    with _store(db) as store:
        try:
            reset_user(store.connection, name, actor=_actor(), password=password, roles=role)
        except MedsafeError as exc:
            raise fail(exc) from None
    out.print(Text(f"{name}: reset (sessions ended)"))
