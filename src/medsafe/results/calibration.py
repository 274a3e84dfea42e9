"""Calibration beside a run's scores: the judge's figures and the judge-error-corrected rate.

For each scorer (and judge) with a stored calibration (``medsafe calibrate``), its block gains
``calibration`` (accuracy, kappa, sensitivity, specificity, when, on which scorer version) and,
when the calibration has a positive rule, ``corrected_rate``: the share of the run's verdicts
that are positive, corrected for the judge's errors with the Rogan-Gladen estimator
(p_obs + spec - 1) / (sens + spec - 1), clipped to [0, 1], with a parametric bootstrap CI that
redraws the observed rate and both calibration proportions (Rogan & Gladen 1978).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from medsafe.results.models import Calibration, CorrectedRate, Estimate, ScorerResults
from medsafe.scale import parse_rule
from medsafe.store import aggregates as sql
from medsafe.store.calibrations import Calibration as StoredCalibration
from medsafe.store.calibrations import latest_calibrations


def _pair(value: Any) -> tuple[float, float] | None:
    if not value or len(value) != 2 or value[0] is None or value[1] is None:
        return None
    return float(value[0]), float(value[1])


def _calibration(cal: StoredCalibration, versions: set[str]) -> Calibration:
    report = cal.report
    detection = report.get("detection") or {}
    return Calibration(
        created=cal.created,
        scorer_version=cal.scorer_version,
        version_matches=versions == {cal.scorer_version},
        labels_sha256=report.get("labels_sha256"),
        n=report.get("n"),
        failure_rate=report.get("failure_rate"),
        accuracy=report.get("accuracy"),
        ci95=_pair(report.get("ci95")),
        kappa=report.get("kappa"),
        positive=detection.get("positive"),
        sensitivity=detection.get("sensitivity"),
        specificity=detection.get("specificity"),
    )


def _corrected(
    conn: sqlite3.Connection, run_id: str, scorer: str, judge: str, cal: StoredCalibration
) -> CorrectedRate | None:
    detection = cal.report.get("detection")
    if not detection or not detection.get("n_pos") or not detection.get("n_neg"):
        return None
    rule = parse_rule(str(detection["positive"]))
    flags: list[float] = []
    for label, value in sql.ok_verdicts(conn, run_id, scorer, judge):
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
    ci = (float(estimate.ci.lo), float(estimate.ci.hi))
    return CorrectedRate(
        positive=rule.text,
        n=len(flags),
        observed=sum(flags) / len(flags),
        corrected=estimate.value,
        ci95=ci,
        method="rogan_gladen_bootstrap",
        estimate=Estimate(
            value=estimate.value, ci95=ci, n=len(flags), method="rogan_gladen_bootstrap"
        ),
    )


def with_calibrations(
    conn: sqlite3.Connection, run_id: str, blocks: dict[str, ScorerResults]
) -> dict[str, ScorerResults]:
    """``blocks`` with ``calibration`` and ``corrected_rate`` where a calibration is stored."""
    table = latest_calibrations(conn)
    if not table:
        return blocks
    versions = sql.scorer_versions(conn, run_id)
    out = dict(blocks)
    for key, block in blocks.items():
        cal = table.get((block.scorer, block.judge or block.scorer))
        if cal is None:
            continue
        out[key] = block.model_copy(
            update={
                "calibration": _calibration(cal, versions.get((block.scorer, block.judge), set())),
                "corrected_rate": _corrected(conn, run_id, block.scorer, block.judge, cal),
            }
        )
    return out
