"""Writing a manifest and its detached signature, and checking them.

``FILE.sig`` holds the base64 of the 64-byte Ed25519 signature of the exact bytes of ``FILE``
(one line). Both files are written beside themselves and renamed into place, so a failure
leaves no half-written file.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medsafe.audit.chain import verify
from medsafe.audit.content import run_content_hash
from medsafe.errors import ConfigError
from medsafe.manifest.build import PREDICATE_TYPE, STATEMENT_TYPE, subject_name
from medsafe.manifest.keys import load_public_key, signature_valid
from medsafe.outputs import OutputError, check_output

__all__ = ["Check", "signature_path", "verify_manifest", "write_manifest"]


def signature_path(path: Path) -> Path:
    """Where the detached signature of ``path`` lives: ``FILE.sig``."""
    return path.with_name(path.name + ".sig")


def _stage(path: Path, data: bytes) -> Path:
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def write_manifest(
    path: Path,
    data: bytes,
    key: Ed25519PrivateKey | None,
    notify: Callable[[str], None],
) -> Path | None:
    """Write ``data`` to ``path`` and, with ``key``, its signature to ``path.sig`` (returned).

    Without a key an older ``path.sig`` is removed (it would not match). OutputError for a
    path that cannot be written (``-`` included: the signature needs a file name).
    """
    check_output(path, stdout_ok=False)
    sig = signature_path(path)
    staged: list[Path] = []
    try:
        staged.append(_stage(path, data))
        if key is not None:
            signature = base64.b64encode(key.sign(data)) + b"\n"
            staged.append(_stage(sig, signature))
        if path.exists():
            notify(f"replacing existing file {path}")
        staged[0].replace(path)
        if key is not None:
            staged[1].replace(sig)
        elif sig.exists():
            sig.unlink()
            notify(f"removed {sig}: it signed the previous manifest")
    except OSError as exc:
        raise OutputError(f"{exc.filename or path}: cannot write: {exc.strerror or exc}") from exc
    finally:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
    return sig if key is not None else None


@dataclass(frozen=True)
class Check:
    """One verification step: what was checked, whether it held, and the detail."""

    name: str
    ok: bool
    detail: str


def _statement(data: bytes) -> tuple[dict[str, Any] | None, Check]:
    try:
        statement = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, Check("format", False, f"not UTF-8 JSON ({exc})")
    if not isinstance(statement, dict):
        return None, Check("format", False, "not a JSON object")
    problems = []
    if statement.get("_type") != STATEMENT_TYPE:
        problems.append(f"_type is not {STATEMENT_TYPE}")
    if statement.get("predicateType") != PREDICATE_TYPE:
        problems.append(f"predicateType is not {PREDICATE_TYPE}")
    predicate = statement.get("predicate")
    subjects = statement.get("subject")
    if not isinstance(predicate, dict) or not isinstance(subjects, list) or len(subjects) != 1:
        problems.append("needs one subject and a predicate object")
    else:
        digest = (subjects[0].get("digest") or {}).get("sha256")
        content = (predicate.get("content_hash") or {}).get("sha256")
        if not digest or digest != content:
            problems.append("the subject's sha256 differs from the predicate's content hash")
        if subjects[0].get("name") != subject_name(str(predicate.get("run_id"))):
            problems.append("the subject's name does not match the predicate's run_id")
    if problems:
        return None, Check("format", False, "; ".join(problems))
    return statement, Check("format", True, "in-toto Statement v1, medsafe run manifest v1")


def _signature(path: Path, data: bytes, key_path: Path) -> Check:
    key = load_public_key(key_path)
    sig = signature_path(path)
    try:
        raw = base64.b64decode(sig.read_bytes().strip(), validate=True)
    except FileNotFoundError:
        return Check("signature", False, f"{sig}: missing (the manifest was not signed)")
    except (OSError, binascii.Error) as exc:
        return Check("signature", False, f"{sig}: unreadable ({exc})")
    if signature_valid(key, raw, data):
        return Check(
            "signature", True, f"valid Ed25519 signature ({key_path}) over {len(data)} bytes"
        )
    return Check("signature", False, f"does not match {key_path}: the file or signature changed")


def _store(statement: dict[str, Any], conn: sqlite3.Connection) -> list[Check]:
    predicate = statement["predicate"]
    run_id = str(predicate["run_id"])
    signed = str(predicate["content_hash"]["sha256"])
    if conn.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone() is None:
        return [Check("content", False, f"run {run_id!r} is not in the store")]
    now = run_content_hash(conn, run_id)
    content = (
        Check("content", True, f"run {run_id!r} content hash {now[:12]}... matches")
        if now == signed
        else Check(
            "content",
            False,
            f"run {run_id!r} changed: content hash now {now[:12]}..., manifest {signed[:12]}...",
        )
    )
    head = (predicate.get("audit") or {}).get("head")
    chain = verify(conn, [head] if isinstance(head, str) else [])
    return [content, Check("audit", chain.ok, chain.reason)]


def verify_manifest(
    path: Path, *, key_path: Path | None = None, conn: sqlite3.Connection | None = None
) -> list[Check]:
    """Check ``path``: its signature (with ``key_path``) over the exact bytes, then its form,
    then (with ``conn``) the run's content hash and the audit chain against the store.

    Raises ConfigError when ``path`` or the key cannot be read.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the manifest: {exc.strerror or exc}") from None
    checks = []
    if key_path is not None:
        checks.append(_signature(path, data, key_path))
    statement, form = _statement(data)
    checks.append(form)
    if statement is not None and conn is not None:
        checks.extend(_store(statement, conn))
    return checks
