"""Detection figures of a run: per-label P/R/F1, micro/macro-F1, exact match (cluster
bootstrap over images or reports), unparsed answers, location correctness and additional
discoveries, added to the ``detection`` scorer's block (docs/imaging.md has the formulas).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from medsafe.results.estimate import N_RESAMPLES, proportion
from medsafe.results.judged import HUMAN
from medsafe.results.models import AdditionalDiscoveries, Estimate, LabelFigures, ScorerResults
from medsafe.results.scores import metric_name
from medsafe.stats.results import Interval
from medsafe.store import aggregates as sql

SCORER = "detection"


@dataclass
class DetectionRows:
    """The parsed and unparsed answers of one scorer and judge."""

    labels: list[str] = field(default_factory=list)
    expected: list[frozenset[str]] = field(default_factory=list)
    predicted: list[frozenset[str]] = field(default_factory=list)
    clusters: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    unparsed: int = 0
    located: int = 0
    located_right: int = 0

    def add(self, item_id: str, extra: Mapping[str, Any]) -> None:
        """One ok score's extras."""
        for label in extra.get("label_set") or ():
            if label not in self.labels:
                self.labels.append(str(label))
        if extra.get("predicted") is None:
            self.unparsed += 1
            return
        expected = frozenset(str(x) for x in extra.get("expected") or ())
        predicted = frozenset(str(x) for x in extra["predicted"])
        self.expected.append(expected)
        self.predicted.append(predicted)
        self.clusters.append(str(extra.get("cluster") or item_id))
        self.item_ids.append(item_id)
        truth_at = extra.get("expected_locations") or {}
        said_at = extra.get("predicted_locations") or {}
        for label in expected & predicted:
            if label in truth_at and label in said_at:
                self.located += 1
                self.located_right += truth_at[label] == said_at[label]


def detection_rows(conn: sqlite3.Connection, run_id: str) -> dict[str, DetectionRows]:
    """Rows per metric name (``detection`` or ``detection:JUDGE``)."""
    out: dict[str, DetectionRows] = {}
    for item_id, judge, _label, blob in sql.ok_score_extras(conn, run_id, SCORER):
        extra = json.loads(blob).get("extra") or {}
        out.setdefault(metric_name(SCORER, judge), DetectionRows()).add(item_id, extra)
    return out


def _estimate(value: float, ci: Interval, n: int) -> Estimate:
    if math.isnan(value):
        return Estimate(value=None, ci95=None, n=n, method=None)
    bounds = None if math.isnan(ci.lo) or math.isnan(ci.hi) else (ci.lo, ci.hi)
    return Estimate(value=value, ci95=bounds, n=n, method="cluster_bootstrap" if bounds else None)


def detection_figures(rows: DetectionRows) -> dict[str, Any]:
    """The detection fields of a scorer block (per_label, micro/macro-F1, exact match, ...)."""
    from medsafe.stats.multilabel import label_matrix, multilabel_figures

    labels = tuple(rows.labels)
    n = len(rows.expected)
    figures = multilabel_figures(
        label_matrix(rows.expected, labels),
        label_matrix(rows.predicted, labels),
        labels,
        rows.clusters,
        n_resamples=N_RESAMPLES,
    )
    per_label = {
        label: LabelFigures(
            precision=_estimate(
                figures.precision[j], figures.precision_ci[j], figures.predicted[j]
            ),
            recall=_estimate(figures.recall[j], figures.recall_ci[j], figures.support[j]),
            f1=_estimate(figures.f1[j], figures.f1_ci[j], n),
            support=figures.support[j],
            predicted=figures.predicted[j],
        )
        for j, label in enumerate(labels)
    }
    return {
        "per_label": per_label,
        "macro_f1": _estimate(figures.macro_f1, figures.macro_f1_ci, n),
        "micro_f1": _estimate(figures.micro_f1, figures.micro_f1_ci, n),
        "exact_match": _estimate(figures.exact_match, figures.exact_match_ci, n),
        "unparsed": rows.unparsed,
        "location": proportion(rows.located_right, rows.located) if rows.located else None,
    }


def additional_block(
    rows: DetectionRows, confirmed: Mapping[str, set[str]] | None
) -> AdditionalDiscoveries:
    """Additional discoveries: flagged labels absent from the reference. ``confirmed`` maps an
    item id to the flagged labels reviewers confirmed (None: no review yet)."""
    flagged = reviewed = kept = 0
    tp = sum(len(e & p) for e, p in zip(rows.expected, rows.predicted, strict=True))
    items_with = items_confirmed = 0
    for item_id, expected, predicted in zip(
        rows.item_ids, rows.expected, rows.predicted, strict=True
    ):
        extra = predicted - expected
        flagged += len(extra)
        items_with += bool(extra)
        if confirmed is not None and item_id in confirmed:
            reviewed += len(extra)
            ok = extra & confirmed[item_id]
            kept += len(ok)
            items_confirmed += bool(ok)
    n = len(rows.expected)
    after = None
    if confirmed is not None:
        after = proportion(tp + kept, tp + flagged)
    return AdditionalDiscoveries(
        flagged=flagged,
        reviewed=reviewed,
        confirmed=kept,
        rate=proportion(items_with, n),
        confirmed_rate=proportion(items_confirmed, n) if confirmed is not None else None,
        precision_before=proportion(tp, tp + flagged),
        precision_after=after,
    )


CONFIRMED = "detection.confirmed"
CONFIRMED_CHOICE = "confirmed"


def confirmations(conn: sqlite3.Connection, run_id: str) -> dict[str, set[str]] | None:
    """Item id -> the flagged labels reviewers confirmed, from the final human labels of the
    additional-discovery review (``medsafe qc discoveries``); None before any is final."""
    out: dict[str, set[str]] = {}
    for item_id, judge, _label, blob in sql.ok_score_extras(conn, run_id, CONFIRMED):
        if judge != HUMAN:
            continue
        values = (json.loads(blob).get("extra") or {}).get("values") or {}
        out[item_id] = {label for label, key in values.items() if key == CONFIRMED_CHOICE}
    return out or None


def flagged_units(conn: sqlite3.Connection, run_id: str) -> dict[str, list[str]]:
    """Item id -> the labels the model flagged that the reference lacks (the units of an
    additional-discovery review), from the ``detection`` scorer's own scores."""
    rows = detection_rows(conn, run_id).get(SCORER) or DetectionRows()
    return {
        item_id: sorted(predicted - expected)
        for item_id, expected, predicted in zip(
            rows.item_ids, rows.expected, rows.predicted, strict=True
        )
        if predicted - expected
    }


def with_detection(
    conn: sqlite3.Connection, run_id: str, blocks: dict[str, ScorerResults]
) -> dict[str, ScorerResults]:
    """``blocks`` with the detection fields filled in on every detection block."""
    if not any(name == SCORER or name.startswith(SCORER + ":") for name in blocks):
        return blocks
    confirmed = confirmations(conn, run_id)
    out = dict(blocks)
    for name, rows in detection_rows(conn, run_id).items():
        if name not in out or name.endswith(":" + HUMAN):
            continue
        update = detection_figures(rows)
        update["additional"] = additional_block(rows, confirmed)
        out[name] = out[name].model_copy(update=update)
    return out
