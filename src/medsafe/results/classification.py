"""Classification figures of a run: per class (one-vs-rest) sensitivity, specificity and PPV
with Wilson intervals, the confusion matrix, macro-F1, Cohen's kappa against the reference and
accuracy by modality, added to the ``classification`` scorer's block (docs/imaging.md).
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field

from medsafe.results.estimate import proportion
from medsafe.results.models import ClassFigures, ClassificationFigures, ScorerResults
from medsafe.results.scores import metric_name
from medsafe.store import aggregates as sql

SCORER = "classification"


@dataclass
class ClassRows:
    """Reference and answered classes of one scorer and judge."""

    classes: list[str] = field(default_factory=list)
    reference: list[str] = field(default_factory=list)
    predicted: list[str] = field(default_factory=list)
    modality: list[str] = field(default_factory=list)
    unparsed: int = 0


def class_rows(conn: sqlite3.Connection, run_id: str) -> dict[str, ClassRows]:
    """Rows per metric name (``classification`` or ``classification:JUDGE``)."""
    out: dict[str, ClassRows] = {}
    for _item, judge, _label, blob in sql.ok_score_extras(conn, run_id, SCORER):
        extra = json.loads(blob).get("extra") or {}
        rows = out.setdefault(metric_name(SCORER, judge), ClassRows())
        for name in extra.get("classes") or ():
            if name not in rows.classes:
                rows.classes.append(str(name))
        if extra.get("predicted") is None:
            rows.unparsed += 1
            continue
        rows.reference.append(str(extra["reference"]))
        rows.predicted.append(str(extra["predicted"]))
        rows.modality.append(str(extra.get("modality") or ""))
    return out


def classification_figures(rows: ClassRows) -> ClassificationFigures:
    """Every classification figure from the parsed answers."""
    classes = rows.classes
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    matrix = [[0] * k for _ in range(k)]
    for ref, got in zip(rows.reference, rows.predicted, strict=True):
        matrix[index[ref]][index[got]] += 1
    n = len(rows.reference)
    per_class: dict[str, ClassFigures] = {}
    f1s: list[float] = []
    for i, name in enumerate(classes):
        tp = matrix[i][i]
        support = sum(matrix[i])
        said = sum(matrix[r][i] for r in range(k))
        fn, fp = support - tp, said - tp
        tn = n - tp - fn - fp
        f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None
        if support and f1 is not None:
            f1s.append(f1)
        per_class[name] = ClassFigures(
            sensitivity=proportion(tp, tp + fn),
            specificity=proportion(tn, tn + fp),
            ppv=proportion(tp, tp + fp),
            f1=f1,
            support=support,
        )
    modalities: dict[str, list[int]] = {}
    for ref, got, modality in zip(rows.reference, rows.predicted, rows.modality, strict=True):
        if modality:
            tally = modalities.setdefault(modality, [0, 0])
            tally[0] += ref == got
            tally[1] += 1
    return ClassificationFigures(
        classes=list(classes),
        per_class=per_class,
        confusion=matrix,
        accuracy=proportion(sum(matrix[i][i] for i in range(k)), n),
        macro_f1=sum(f1s) / len(f1s) if f1s else None,
        kappa=_kappa(rows) if n else None,
        by_modality={m: proportion(c, t) for m, (c, t) in sorted(modalities.items())},
        unparsed=rows.unparsed,
    )


def _kappa(rows: ClassRows) -> float | None:
    from medsafe.stats.agreement import cohen_kappa

    value = cohen_kappa(rows.reference, rows.predicted, labels=rows.classes)
    return None if math.isnan(value) else value


def with_classification(
    conn: sqlite3.Connection, run_id: str, blocks: dict[str, ScorerResults]
) -> dict[str, ScorerResults]:
    """``blocks`` with the classification figures on every classification block."""
    if not any(name.split(":", 1)[0] == SCORER for name in blocks):
        return blocks
    out = dict(blocks)
    for name, rows in class_rows(conn, run_id).items():
        if name in out:
            figures = classification_figures(rows)
            out[name] = out[name].model_copy(
                update={"classification": figures, "unparsed": rows.unparsed}
            )
    return out
