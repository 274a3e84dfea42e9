"""Judge calibration against human labels (``medsafe calibrate``) and corrected rates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsafe.errors import SuiteError

__all__ = ["calibrate"]


def calibrate(
    scorer_name: str,
    judge_ref: str | None,
    labels_path: Path,
    *,
    config_path: Path | None = None,
    positive: str | None = None,
    db: Path | None = None,
    concurrency: int = 8,
    seed: int = 0,
) -> dict[str, Any]:
    """Judge every labelled row, compare with the humans, store the result in ``db`` (if any).

    Returns the report: ``{scorer, scorer_version, judge, n, accuracy, ci95, kappa, macro_f1,
    per_class, mae, confusion_matrix, detection, failed, ...}``.
    """
    # imported here so that ``medsafe --help`` and ``medsafe run`` do not load them
    from medsafe.calibrate.labels import check_scale, load_human_labels
    from medsafe.calibrate.run import calibration_report, default_judge_name, score_rows
    from medsafe.judges.build import aclose_scorer, build_judged_scorer
    from medsafe.pipeline import run_async
    from medsafe.scale import PositiveRule, parse_rule
    from medsafe.store.calibrations import save_calibration

    labels = load_human_labels(labels_path)
    scorer = build_judged_scorer(scorer_name, judge_ref, config_path)
    declared = scorer.scales()[scorer.name]
    try:
        check_scale(labels, declared, scorer.name)  # before any judge call
    except SuiteError:
        run_async(aclose_scorer(scorer))
        raise
    rule: PositiveRule | None = parse_rule(positive) if positive else declared.rule()
    judge = default_judge_name(scorer_name, judge_ref)

    async def go() -> list[Any]:
        try:
            return await score_rows(scorer, labels, judge, concurrency)
        finally:
            await aclose_scorer(scorer)

    scores = run_async(go())
    report = calibration_report(labels, scores, rule, seed=seed)
    head = {"scorer": scorer.name, "scorer_version": scorer.version, "judge": judge}
    result = {**head, **report}
    if db is not None:
        result["created"] = save_calibration(db, scorer.name, judge, scorer.version, result)
    return result
