"""The governance section of the report (``medsafe report RUN --governance``): a run mapped
onto the three tiers of the governance framework, and the sign-offs every report shows.

- **Audit team**: review tasks (progress, adjudications), reviewers' agreement per label field
  (percent agreement, Fleiss' kappa, Gwet's AC1, Krippendorff's alpha with bootstrap 95% CIs,
  from :mod:`medsafe.stats.reliability` as ``medsafe review status`` computes them), sign-offs
  with their stale state, and whether the audit chain verifies.
- **Data ethics**: the PHI/PII scan of the run's items and answers (:mod:`medsafe.dataethics`),
  the items' licences and sources, and the egress decision the run recorded.
- **Safety simulation**: every ``medsafe gate`` decision on the run, rule by rule, with the
  estimate, its interval, the bound and the n that would decide.

Values are plain strings and numbers; the template escapes them.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medsafe.audit.chain import verify
from medsafe.audit.signoffs import SignOffStatus, signoffs_for
from medsafe.store.governance import ReviewTaskRow, item_licences, review_labels, review_tasks_of
from medsafe.store.schema_gate import gate_results_of

if TYPE_CHECKING:
    from medsafe.report.data import RunData

__all__ = ["governance_section", "report_context", "signoff_rows"]


def _num(value: object, spec: str = ".3f") -> str:
    if isinstance(value, int | float) and math.isfinite(value):
        return format(value, spec)
    return "–"


def _interval(ci: object, spec: str = ".3f") -> str:
    if (
        isinstance(ci, list | tuple)
        and len(ci) == 2
        and all(isinstance(x, int | float) for x in ci)
    ):
        return f"[{_num(ci[0], spec)}, {_num(ci[1], spec)}]"
    return ""


def signoff_rows(signoffs: Sequence[SignOffStatus]) -> list[dict[str, str]]:
    """Sign-offs as table rows (newest last)."""
    return [
        {
            "decision": s.decision,
            "actor": s.actor,
            "ts": s.ts,
            "comment": s.comment,
            "conditions": s.conditions,
            "content_hash": s.content_hash[:16],
            "state": "STALE: the run changed since it was signed" if s.stale else "current",
            "stale": "stale" if s.stale else "",
        }
        for s in signoffs
    ]


def _field_agreement(
    task: ReviewTaskRow, labels: list[tuple[str, str, dict[str, str]]]
) -> list[dict[str, str]]:
    """Per label field, the reliability statistics of ``medsafe review status``."""
    from medsafe.stats.reliability import counts_table, reliability

    schema = task.spec.get("label_schema") or {}
    by_unit: dict[str, list[dict[str, str]]] = {}
    for item_id, _reviewer, given in labels:
        by_unit.setdefault(item_id, []).append(given)
    out = []
    for f in schema.get("fields") or []:
        choices = f.get("choices") or []
        keys = [str(c["key"]) for c in choices]
        name = str(f.get("name"))
        ratings = [[v[name] for v in unit if name in v] for unit in by_unit.values()]
        table = counts_table(ratings, keys)
        ordinal = f.get("kind") == "ordinal"
        values: list[float] | None = None
        if ordinal:
            raw = [float(c.get("value") or 0.0) for c in choices]
            order = sorted(range(len(keys)), key=lambda j: raw[j])
            table = table[:, order]
            values = [raw[j] for j in order]
        stats = reliability(table, level="ordinal" if ordinal else "nominal", values=values)
        d = stats.to_dict()

        def est(key: str, d: dict[str, Any] = d) -> str:
            entry = d[key]
            return f"{_num(entry['value'])} {_interval(entry['ci95'])}".strip()

        out.append(
            {
                "field": name,
                "level": str(d["alpha_level"]),
                "units": str(d["n_units"]),
                "percent": est("percent_agreement"),
                "fleiss": est("fleiss_kappa"),
                "ac1": est("gwet_ac1"),
                "alpha": est("krippendorff_alpha"),
            }
        )
    return out


def _audit_team(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    tasks = []
    for task in review_tasks_of(conn, run_id):
        labels = review_labels(conn, task.task_id)
        k = int(task.spec.get("k", 2))
        tasks.append(
            {
                "task_id": task.task_id,
                "status": task.status,
                "required": "yes" if task.spec.get("required", True) else "no",
                "sample": str(task.spec.get("sample", "")).replace(",", ", "),  # wraps
                "k": str(k),
                "progress": f"{task.fully_labelled}/{task.units}",
                "labels": str(task.labels),
                "reviewers": str(task.reviewers),
                "adjudicated": str(task.adjudicated),
                "agreement": _field_agreement(task, labels) if labels else [],
            }
        )
    chain = verify(conn)
    return {
        "tasks": tasks,
        "signoffs": signoff_rows(signoffs_for(conn, run_id)),
        "chain_ok": chain.ok,
        "chain": chain.reason,
    }


def _phi_scan(conn: sqlite3.Connection, run_id: str) -> dict[str, Any] | None:
    try:
        from medsafe.dataethics.scan import scan_run
    except ImportError:  # pragma: no cover - the data-ethics scanner is not installed
        return None
    scan = scan_run(conn, run_id)
    return {
        "n_items": scan.items,
        "items_with_identifiers": scan.items_with_identifiers,
        "by_type": dict(sorted(scan.by_type.items())),
        "answers_by_type": dict(sorted(scan.answers_by_type.items())),
    }


def _plain(value: object) -> str:
    """A provenance value as text: lists joined, booleans as yes/no, mappings as k=v."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items()) or "none"
    return "" if value is None else str(value)


def _data_ethics(conn: sqlite3.Connection, run_id: str, egress: Any) -> dict[str, Any]:
    licences, sources = item_licences(conn, run_id)
    return {
        "scan": _phi_scan(conn, run_id),
        "licences": [
            {"name": k or "(none)", "count": v, "missing": not k} for k, v in licences.items()
        ],
        "sources": [{"name": k or "(none)", "count": v} for k, v in sources.items()],
        "egress": [{"key": str(k), "value": _plain(v)} for k, v in egress.items()]
        if isinstance(egress, dict)
        else [],
    }


def _rules(result: Any) -> list[dict[str, str]]:
    rules = result.get("rules") if isinstance(result, dict) else None
    out = []
    for rule in rules if isinstance(rules, list) else []:
        if not isinstance(rule, dict):
            continue
        bound = rule.get("bound") or {}
        side = bound.get("side", "") if isinstance(bound, dict) else ""
        value = bound.get("value") if isinstance(bound, dict) else None
        level = rule.get("level")
        out.append(
            {
                "metric": str(rule.get("metric", "")),
                "estimate": _num(rule.get("estimate"), ".4g"),
                "ci": _interval(rule.get("ci"), ".4g"),
                "level": _num(level, ".0%") if isinstance(level, float) else str(level or ""),
                "bound": f"{side} {'<=' if side == 'upper' else '>='} {_num(value, '.4g')}"
                if side
                else str(rule.get("baseline", "")),
                "outcome": str(rule.get("outcome", "")),
                "n_needed": "" if rule.get("n_needed") is None else str(rule.get("n_needed")),
            }
        )
    return out


def _safety(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
    return [
        {
            "id": str(g["id"]),
            "ts": str(g["ts"]),
            "outcome": str(g["outcome"]),
            "policy": str(g["policy_sha256"])[:16],
            "runs": ", ".join(str(r) for r in g["run_ids"]),
            "rules": _rules(g["result"]),
        }
        for g in gate_results_of(conn, run_id)
    ]


def governance_section(
    conn: sqlite3.Connection, run_id: str, provenance: dict[str, Any]
) -> dict[str, Any]:
    """The three tiers of one run, as template values."""
    return {
        "run_id": run_id,
        "audit": _audit_team(conn, run_id),
        "ethics": _data_ethics(conn, run_id, provenance.get("egress")),
        "safety": _safety(conn, run_id),
    }


def report_context(runs: Sequence[RunData], *, full: bool) -> dict[str, Any]:
    """The template values: ``signoffs`` (runs that have any; every report shows them) and,
    with ``full`` (``--governance``), ``governance``: one three-tier section per run."""
    from medsafe.report.data import open_store

    signoffs: list[dict[str, Any]] = []
    sections: list[dict[str, Any]] = []
    for run in runs:
        with open_store(run.ref.db) as store:
            conn = store.connection
            rows = signoff_rows(signoffs_for(conn, run.ref.run_id))
            if rows:
                signoffs.append({"run_id": run.ref.run_id, "rows": rows})
            if full:
                sections.append(governance_section(conn, run.ref.run_id, run.record.provenance))
    return {"signoffs": signoffs, "governance": sections}
