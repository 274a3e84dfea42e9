"""Calibration beside a run's scores: the judge's figures and the judge-error-corrected rate.

For each scorer (and judge) of a run that has a stored calibration, ``results`` gains
``calibration`` (accuracy, kappa, sensitivity, specificity, when and on which scorer version)
and, when the calibration has a positive rule, ``corrected_rate``: the share of the run's
verdicts that are positive (e.g. ``unsafe``), corrected for the judge's errors with the
Rogan-Gladen estimator (p_obs + spec - 1) / (sens + spec - 1), clipped to [0, 1], with a
parametric bootstrap CI that redraws the observed rate and both calibration proportions
(Rogan & Gladen 1978; :func:`medsafe.stats.prevalence.corrected_rate_ci`).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from medsafe.calibrate.positive import parse_rule
from medsafe.calibrate.store import Calibration, latest_calibrations


def _calibration_block(cal: Calibration, versions: set[str]) -> dict[str, Any]:
    report = cal.report
    detection = report.get("detection") or {}
    return {
        "created": cal.created,
        "scorer_version": cal.scorer_version,
        "version_matches": versions == {cal.scorer_version},
        "labels_sha256": report.get("labels_sha256"),
        "n": report.get("n"),
        "failure_rate": report.get("failure_rate"),
        "accuracy": report.get("accuracy"),
        "ci95": report.get("ci95"),
        "kappa": report.get("kappa"),
        "positive": detection.get("positive"),
        "sensitivity": detection.get("sensitivity"),
        "specificity": detection.get("specificity"),
    }


def _corrected(
    conn: sqlite3.Connection, run_id: str, scorer: str, judge: str, cal: Calibration
) -> dict[str, Any] | None:
    detection = cal.report.get("detection")
    if not detection or not detection.get("n_pos") or not detection.get("n_neg"):
        return None
    rule = parse_rule(str(detection["positive"]))
    flags: list[float] = []
    for label, value in conn.execute(
        "SELECT label, value FROM scores WHERE run_id=? AND scorer=? AND judge=? AND status='ok'",
        (run_id, scorer, judge),
    ):
        positive = rule.is_positive(label, value)
        if positive is not None:
            flags.append(float(positive))
    if not flags:
        return None
    from medsafe.stats.prevalence import corrected_rate_ci

    estimate = corrected_rate_ci(
        flags,
        (int(detection["tp"]), int(detection["n_pos"])),
        (int(detection["tn"]), int(detection["n_neg"])),
    )
    return {
        "positive": rule.text,
        "n": len(flags),
        "observed": sum(flags) / len(flags),
        "corrected": estimate.value,
        "ci95": [estimate.ci.lo, estimate.ci.hi],
        "method": "rogan_gladen_bootstrap",
    }


def calibration_for(
    conn: sqlite3.Connection,
    run_id: str,
    scorer: str,
    judge: str,
    calibrations: dict[tuple[str, str], Calibration] | None = None,
) -> dict[str, Any]:
    """``{"calibration": ..., "corrected_rate": ...}`` for one scorer and judge of a run (the
    keys that apply; empty without a stored calibration)."""
    table = latest_calibrations(conn) if calibrations is None else calibrations
    cal = table.get((scorer, judge or scorer))
    if cal is None:
        return {}
    versions = {
        str(v)
        for (v,) in conn.execute(
            "SELECT DISTINCT json_extract(score_json, '$.scorer_version') FROM scores "
            "WHERE run_id=? AND scorer=? AND judge=?",
            (run_id, scorer, judge),
        )
    }
    out: dict[str, Any] = {"calibration": _calibration_block(cal, versions)}
    corrected = _corrected(conn, run_id, scorer, judge, cal)
    if corrected is not None:
        out["corrected_rate"] = corrected
    return out


def add_calibrations(
    conn: sqlite3.Connection, run_id: str, scorer_blocks: dict[str, dict[str, Any]]
) -> None:
    """Add ``calibration`` and ``corrected_rate`` to the scorer blocks that have one."""
    calibrations = latest_calibrations(conn)
    if not calibrations:
        return
    for block in scorer_blocks.values():
        scorer, judge = str(block["scorer"]), str(block["judge"])
        block.update(calibration_for(conn, run_id, scorer, judge, calibrations))
