"""``medsafe manifest RUN -o FILE [--sign KEY]``, ``medsafe manifest verify FILE [--key PUB]``
and ``medsafe keys new --out PREFIX`` (signed in-toto run manifests)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from medsafe.cli.audit import NOT_INTACT
from medsafe.cli.dboption import db_location, require_store
from medsafe.errors import MedsafeError
from medsafe.exits import fail

keys_app = typer.Typer(help="Ed25519 keys for signing run manifests.", no_args_is_help=True)

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


@keys_app.command("new")
def keys_new_command(
    out: Annotated[
        Path, typer.Option("--out", help="Writes PREFIX.key (private, 0600) and PREFIX.pub.")
    ],
) -> None:
    """Make an Ed25519 key pair: PREFIX.key (PEM PKCS#8, mode 0600) and PREFIX.pub (PEM
    SPKI). Never overwrites a file."""
    from medsafe.manifest.keys import new_keypair

    try:
        key_path, pub_path = new_keypair(out)
    except MedsafeError as exc:
        raise fail(exc) from None
    _out.print(Text(f"wrote {key_path} (private key, mode 0600: keep it secret) and {pub_path}"))


def manifest_command(
    target: Annotated[
        str, typer.Argument(metavar="RUN | verify", help="A run id, or 'verify' and a FILE.")
    ],
    file: Annotated[
        Path | None, typer.Argument(metavar="FILE", help="The manifest to verify.")
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="Results store (default medsafe.db; verify: optional).",
            callback=db_location,
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Manifest file to write.")
    ] = None,
    sign: Annotated[
        Path | None,
        typer.Option("--sign", help="Ed25519 private key (PREFIX.key): also write FILE.sig."),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="verify: the public key (PREFIX.pub) to check FILE.sig."),
    ] = None,
) -> None:
    """Write a run's manifest (in-toto Statement, optionally signed), or verify one.

    The manifest holds the run's content hash, suite, model, versions, sign-offs, audit chain
    head and gate results.

    `medsafe manifest RUN -o FILE [--sign PREFIX.key]` writes FILE (and FILE.sig).
    `medsafe manifest verify FILE [--key PREFIX.pub] [--db PATH]` exits 0 when intact, 1 when
    not: with --key any changed byte fails; with a store, the run's content hash and the audit
    chain are checked against it.
    """
    if target == "verify" and file is not None:
        if output is not None or sign is not None:
            raise fail("manifest verify takes --key and --db, not -o or --sign")
        _verify(file, key, db)
        return
    if file is not None:
        raise fail(f"unexpected argument {str(file)!r}: did you mean `manifest verify FILE`?")
    if key is not None:
        raise fail("--key is for `manifest verify`; to sign, pass --sign PREFIX.key")
    if output is None:
        raise fail("give the manifest file to write with -o FILE")
    _write(target, db or Path("medsafe.db"), output, sign)


def _write(run_id: str, db: Path, output: Path, sign: Path | None) -> None:
    from medsafe.manifest.build import build_manifest, manifest_bytes
    from medsafe.manifest.files import write_manifest
    from medsafe.manifest.keys import load_private_key, private_key_warning
    from medsafe.outputs import check_output, stderr_note
    from medsafe.store import Store

    require_store(db)
    try:
        check_output(output, stdout_ok=False)
        private = None
        if sign is not None:
            private = load_private_key(sign)
            warning = private_key_warning(sign)
            if warning:
                _err.print(Text(f"warning: {warning}"))
        with Store(db) as store:
            record = store.require_run(run_id)
            statement = build_manifest(store.connection, record)
        data = manifest_bytes(statement)
        sig = write_manifest(output, data, private, stderr_note)
    except MedsafeError as exc:
        raise fail(exc) from None
    predicate = statement["predicate"]
    audit = predicate["audit"]
    _out.print(
        Text(
            f"wrote {output}: run {run_id}, content sha256 {predicate['content_hash']['sha256']}, "
            f"{len(predicate['signoffs'])} sign-off(s), {len(predicate['gate_results'])} gate "
            f"result(s), audit head {audit['head'][:12]}... ({audit['entries']} entries)"
        )
    )
    _out.print(Text(f"signed: {sig}" if sig else "not signed (pass --sign PREFIX.key to sign)"))
    if not audit["chain_ok"]:
        _err.print(Text(f"warning: the audit chain does not verify: {audit['chain_report']}"))


def _verify(file: Path, key: Path | None, db: Path | None) -> None:
    from medsafe.manifest.files import verify_manifest
    from medsafe.store import Store

    if key is None and db is None:
        db = Path("medsafe.db")
    try:
        if db is not None:
            require_store(db)
            with Store(db) as store:
                checks = verify_manifest(file, key_path=key, conn=store.connection)
        else:
            checks = verify_manifest(file, key_path=key)
    except MedsafeError as exc:
        raise fail(exc) from None
    for check in checks:
        mark = ("ok  ", "green") if check.ok else ("FAIL", "bold red")
        _out.print(Text.assemble(mark, f" {check.name}: {check.detail}"))
    if key is None:
        _out.print(
            Text.assemble(
                ("NOTE", "yellow"),
                " signature: NOT checked (no --key given); only the content against the store",
            )
        )
    elif db is None:
        _out.print(Text("note: content not checked against a store (no --db given)"))
    if not all(check.ok for check in checks):
        _out.print(Text.assemble(("manifest NOT intact", "bold red"), f": {file}"))
        raise typer.Exit(NOT_INTACT)
    _out.print(Text(f"manifest intact: {file}"))
