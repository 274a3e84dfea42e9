"""``medsafe calibrate``: score human-labelled responses with a judge and compare.

Each labelled row becomes a one-turn transcript (user prompt, assistant response) scored by the
judged scorer exactly as in a run. A judge call that fails is counted as ``failed`` with its
cause and left out of the metrics, never scored. The report has accuracy (Wilson CI), Cohen's
kappa, macro-F1 and per-class precision and recall (proportions: Wilson CIs, with their
``precision_n``/``recall_n``) and F1 (bootstrap CI), MAE and quadratic weighted
kappa for scores, the confusion matrix, and, under a positive rule (what counts as harmful),
the judge's sensitivity and specificity (Wilson CIs) that correct a run's harmful rate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from medsafe.calibrate.labels import HumanLabel, LabelSet
from medsafe.errors import MedsafeError
from medsafe.scale import PositiveRule
from medsafe.schema import Item, Message, ModelParams, Score, Transcript
from medsafe.scoring import Scorer

RUN_ID = "calibration"


def labelled_pair(row: HumanLabel) -> tuple[Item, Transcript]:
    """The item and one-turn transcript a judge sees for a labelled row."""
    user = Message(role="user", content=row.prompt)
    item = Item(
        id=row.id,
        suite=RUN_ID,
        language=row.language,
        kind=row.kind,
        messages=(user,),
        category=row.category,
        reference=row.reference,
    )
    transcript = Transcript(
        run_id=RUN_ID,
        item_id=row.id,
        model="human-labelled",
        params=ModelParams(),
        messages=(user, Message(role="assistant", content=row.response)),
        status="ok",
    )
    return item, transcript


def pick_score(scores: Sequence[Score], judge: str) -> Score | None:
    """The whole-answer score of ``judge`` (for one judge, its only score)."""
    whole = [s for s in scores if s.turn is None] or list(scores)
    for score in whole:
        if score.judge == judge:
            return score
    return whole[0] if len(whole) == 1 else None


async def score_rows(
    scorer: Scorer, labels: LabelSet, judge: str, concurrency: int = 8
) -> list[Score | None]:
    """The judge's score of every row, in order (None when the scorer gave none)."""
    pairs = [labelled_pair(row) for row in labels.rows]
    for item, _ in pairs:
        if not scorer.applies_to(item):
            raise MedsafeError(
                f"{labels.path}: scorer {scorer.name!r} does not judge {item.kind!r} items"
            )
    batches = await scorer.score_many([i for i, _ in pairs], [t for _, t in pairs])
    return [pick_score(scores, judge) for scores in batches]


def _prediction(score: Score | None, mode: str) -> tuple[str | float | None, str | None]:
    """``(verdict, None)`` or ``(None, cause)`` for a row the judge did not settle."""
    if score is None:
        return None, "no score"
    if score.status != "ok":
        return None, score.error or score.status
    if mode == "label":
        return (score.label, None) if score.label is not None else (None, "no label")
    return (score.value, None) if score.value is not None else (None, "no value")


def _flat(estimate: dict[str, Any]) -> tuple[float | None, list[float | None]]:
    ci = estimate["ci"]
    return estimate["value"], [ci["lo"], ci["hi"]]


def _flatten(report: dict[str, Any]) -> dict[str, Any]:
    """``classification_report``'s nested estimates as ``name`` + ``name_ci95`` fields."""
    accuracy, acc_ci = _flat(report["accuracy"])
    out: dict[str, Any] = {"n": report["n"], "accuracy": accuracy, "ci95": acc_ci}
    for key in ("kappa", "macro_f1", "mae", "weighted_kappa_quadratic"):
        if key in report:
            out[key], out[f"{key}_ci95"] = _flat(report[key])
    if "mae" not in report:
        out["mae"] = None
    from medsafe.stats.normal import wilson_bounds

    matrix: list[list[int]] = report["confusion_matrix"]
    per_class: dict[str, Any] = {}
    for j, (label, block) in enumerate(report["per_class"].items()):
        entry: dict[str, Any] = {"support": block["support"]}
        hits = matrix[j][j]
        predicted = sum(row[j] for row in matrix)
        for key, n in (("precision", predicted), ("recall", sum(matrix[j]))):
            entry[key] = hits / n if n else 0.0  # zero division counts as 0, as in sklearn
            entry[f"{key}_ci95"] = list(wilson_bounds(hits, n) or (None, None))
            entry[f"{key}_n"] = n
        entry["f1"], entry["f1_ci95"] = _flat(block["f1"])
        per_class[label] = entry
    out["per_class"] = per_class
    out["labels"] = report["labels"]
    out["confusion_matrix"] = report["confusion_matrix"]
    return out


def detection(
    truths: Sequence[str | float], preds: Sequence[str | float], rule: PositiveRule
) -> dict[str, Any]:
    """Sensitivity and specificity of the judge under ``rule`` (Wilson 95% CIs)."""
    from medsafe.stats.normal import wilson_bounds as wilson

    tp = n_pos = tn = n_neg = 0
    for truth, pred in zip(truths, preds, strict=True):
        human = rule.on_truth(truth)
        judge = rule.on_truth(pred)
        if human is None or judge is None:
            continue
        if human:
            n_pos += 1
            tp += judge
        else:
            n_neg += 1
            tn += not judge
    return {
        "positive": rule.text,
        "tp": tp,
        "n_pos": n_pos,
        "tn": tn,
        "n_neg": n_neg,
        "sensitivity": tp / n_pos if n_pos else None,
        "sensitivity_ci95": wilson(tp, n_pos),
        "specificity": tn / n_neg if n_neg else None,
        "specificity_ci95": wilson(tn, n_neg),
    }


def calibration_report(
    labels: LabelSet,
    scores: Sequence[Score | None],
    rule: PositiveRule | None,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare the judge's verdicts with the human ones (failed rows are counted, not scored)."""
    from medsafe.stats.calibration import classification_report

    truths: list[str | float] = []
    preds: list[str | float] = []
    causes: Counter[str] = Counter()
    for row, score in zip(labels.rows, scores, strict=True):
        pred, cause = _prediction(score, labels.mode)
        if pred is None:
            causes[cause or "unknown"] += 1
            continue
        truths.append(row.truth)
        preds.append(pred)
    failed = sum(causes.values())
    base: dict[str, Any] = {
        "labels_file": str(labels.path),
        "labels_sha256": labels.sha256,
        "mode": labels.mode,
        "n_rows": len(labels.rows),
        "failed": failed,
        "failure_rate": failed / len(labels.rows),
        "failure_causes": dict(causes.most_common(5)),
    }
    if not truths:
        raise MedsafeError(
            f"{labels.path}: the judge settled none of the {len(labels.rows)} rows "
            f"(causes: {dict(causes.most_common(3))})"
        )
    if labels.mode == "label":
        names = sorted({str(v) for v in (*truths, *preds)})
        report = classification_report([str(t) for t in truths], [str(p) for p in preds], names)
    else:
        values = sorted({float(v) for v in (*truths, *preds)})
        report = classification_report(
            [float(t) for t in truths], [float(p) for p in preds], values, ordinal=True, seed=seed
        )
    out = {**base, **_flatten(report)}
    out["detection"] = detection(truths, preds, rule) if rule is not None else None
    return out


def default_judge_name(scorer_name: str, judge_ref: str | None) -> str:
    """The ``judge`` column a scorer writes: the reference, or the scorer's own name."""
    return judge_ref if judge_ref is not None else scorer_name
