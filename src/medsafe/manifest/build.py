"""The run manifest: an in-toto Statement v1 whose subject is the run's content hash.

The predicate (type :data:`PREDICATE_TYPE`) records what the run was -- suite hash and item
count, model spec and parameters, versions -- and what was decided about it: sign-offs, gate
results, the audit chain's head, and the egress (PHI) decision the run recorded. It never
holds keys: API keys are read from the environment and never stored, the name of their
variable is left out, URLs are shown with credentials masked, and option values under
credential-like names are dropped.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from medsafe._version import __version__
from medsafe.audit.chain import verify
from medsafe.audit.content import CONTENT_FORMAT, run_content_hash
from medsafe.audit.signoffs import signoffs_for
from medsafe.redact import redact
from medsafe.store.governance import item_licences, review_tasks_of
from medsafe.store.schema_gate import gate_results_of
from medsafe.store.sqlite import RunRecord

__all__ = [
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "build_manifest",
    "gate_results_for",
    "manifest_bytes",
    "sanitized",
    "subject_name",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
"""``_type`` of an in-toto Statement v1."""

PREDICATE_TYPE = "urn:medsafe:predicate:run-manifest:v1"
"""``predicateType`` of medsafe's run manifests (documented in docs/audit.md)."""

_SECRET_NAME = re.compile(
    r"(?i)(api[_-]?key|access[_-]?token|refresh[_-]?token|auth[_-]?token|client[_-]?secret"
    r"|^key$|_key$|token|secret|password|passwd|pwd|authorization|cookie|credential)"
)
"""Names whose values a manifest drops (``api_key_env`` included: no key, nor where it is)."""

_TOOLS = ("cryptography", "rfc8785", "pydantic", "numpy", "scipy")


def subject_name(run_id: str) -> str:
    """The statement subject's ``name`` for a run."""
    return f"medsafe-run:{run_id}"


def sanitized(value: Any) -> Any:
    """``value`` with credential-named members dropped and credentials in strings masked."""
    if isinstance(value, dict):
        return {str(k): sanitized(v) for k, v in value.items() if not _SECRET_NAME.search(str(k))}
    if isinstance(value, list | tuple):
        return [sanitized(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


def _versions(provenance: dict[str, Any]) -> dict[str, Any]:
    tools: dict[str, str] = {}
    for name in _TOOLS:
        try:
            tools[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "run": sanitized(
            {
                key: provenance[key]
                for key in ("medsafe", "git_revision", "python", "platform", "packages")
                if key in provenance
            }
        ),
        "manifest": {
            "medsafe": __version__,
            "python": sys.version.split()[0],
            "packages": tools,
        },
    }


def _suite(conn: sqlite3.Connection, record: RunRecord) -> dict[str, Any]:
    spec = record.spec
    licenses, sources = item_licences(conn, spec.run_id)
    return {
        "name": spec.suite,
        "format": spec.suite_format,
        "sha256": spec.suite_hash,
        "items": record.n_items,
        "licenses": licenses,
        "sources": sources,
    }


def _model(record: RunRecord) -> dict[str, Any]:
    spec = record.spec.model_dump(mode="json")
    keep = ("model", "base_url", "params", "scorers", "attacker", "limit", "rotate")
    settings = ("concurrency", "timeout_s", "retries")
    chosen: dict[str, Any] = sanitized({key: spec[key] for key in keep + settings})
    return chosen


def gate_results_for(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
    """Every ``medsafe gate`` decision that judged ``run_id``, oldest first, as stored (the
    ``gate_results`` rows of schema v7), with credential-like members dropped."""
    return [sanitized(row) for row in gate_results_of(conn, run_id)]


def _reviews(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
    """The run's review tasks and their progress (reviewers' labels stay in the store)."""
    return [
        {
            "task_id": t.task_id,
            "status": t.status,
            "required": bool(t.spec.get("required", True)),
            "sample": t.spec.get("sample"),
            "k": t.spec.get("k"),
            "units": t.units,
            "units_labelled_k_times": t.fully_labelled,
            "labels": t.labels,
            "reviewers": t.reviewers,
            "adjudicated": t.adjudicated,
        }
        for t in review_tasks_of(conn, run_id)
    ]


def build_manifest(conn: sqlite3.Connection, record: RunRecord) -> dict[str, Any]:
    """The in-toto Statement for the stored run ``record`` (read in one snapshot)."""
    run_id = record.run_id
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        content_hash = run_content_hash(conn, run_id)
        signoffs = signoffs_for(conn, run_id, current_hash=content_hash)
        chain = verify(conn)
        head = conn.execute("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        gates = gate_results_for(conn, run_id)
        suite = _suite(conn, record)
        reviews = _reviews(conn, run_id)
    finally:
        if own:
            conn.execute("COMMIT")
    predicate: dict[str, Any] = {
        "run_id": run_id,
        "created": record.created,
        "updated": record.updated,
        "content_hash": {"sha256": content_hash, "format": CONTENT_FORMAT},
        "suite": suite,
        "model": _model(record),
        "versions": _versions(record.provenance),
        "egress": sanitized(record.provenance.get("egress")),
        "signoffs": [
            {
                "id": s.id,
                "actor": s.actor,
                "decision": s.decision,
                "comment": s.comment,
                "conditions": s.conditions,
                "content_hash": s.content_hash,
                "audit_head": s.audit_head,
                "ts": s.ts,
                "stale": s.stale,
            }
            for s in signoffs
        ],
        "review_tasks": reviews,
        "audit": {
            "head": head[0] if head is not None else "0" * 64,
            "entries": chain.n,
            "chain_ok": chain.ok,
            "chain_report": chain.reason,
        },
        "gate_results": gates,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name(run_id), "digest": {"sha256": content_hash}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def manifest_bytes(statement: dict[str, Any]) -> bytes:
    """The bytes written to the manifest file (indented JSON, UTF-8, final newline); the
    signature covers exactly these."""
    return (json.dumps(statement, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
