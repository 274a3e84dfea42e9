"""Agreement of a task's reviewers, per label field and per reviewer pair, from
:mod:`medsafe.stats` (the one place these statistics are computed).

Per field: percent agreement, Fleiss' kappa, Gwet's AC1 and Krippendorff's alpha (ordinal for
ordinal fields, nominal otherwise) over the units with two or more labels, each with a
bootstrap 95% CI over units. Per reviewer pair: Cohen's kappa (quadratic-weighted for ordinal
fields) on the units both labelled, and how many.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from itertools import combinations

from medsafe.review.model import TaskSpec
from medsafe.review.tasks import Label, labels_of


@dataclass(frozen=True)
class PairAgreement:
    """Cohen's kappa of two reviewers on one field."""

    a: str
    b: str
    n: int
    kappa: float | None
    agreement: float | None


@dataclass(frozen=True)
class FieldAgreement:
    """Agreement on one field of the label."""

    field: str
    stats: dict[str, object]
    """:meth:`medsafe.stats.reliability.Reliability.to_dict`."""
    pairs: list[PairAgreement]


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def task_agreement(
    conn: sqlite3.Connection, task: TaskSpec, *, n_resamples: int = 1000, seed: int = 0
) -> list[FieldAgreement]:
    """Agreement of the task's reviewers on every field of its label schema."""
    from medsafe.stats import cohen_kappa
    from medsafe.stats.reliability import counts_table, reliability

    labels = labels_of(conn, task.task_id)
    by_unit: dict[str, list[Label]] = {}
    for lab in labels:
        by_unit.setdefault(lab.item_id, []).append(lab)
    reviewers = sorted({lab.by for lab in labels})
    out = []
    for f in task.label_schema.fields:
        keys = [c.key for c in f.choices]
        table = counts_table(
            [[lab.values[f.name] for lab in labs] for labs in by_unit.values()], keys
        )
        ordinal = f.kind == "ordinal"
        values = [c.value or 0.0 for c in f.choices] if ordinal else None
        if ordinal:
            order = sorted(range(len(keys)), key=lambda j: values[j] if values else j)
            table = table[:, order]
            values = [values[j] for j in order] if values else None
        rel = reliability(
            table,
            level="ordinal" if ordinal else "nominal",
            values=values,
            n_resamples=n_resamples,
            seed=seed,
        )
        pairs = []
        for a, b in combinations(reviewers, 2):
            both = [
                (la.values[f.name], lb.values[f.name])
                for labs in by_unit.values()
                for la in labs
                if la.by == a
                for lb in labs
                if lb.by == b
            ]
            if len(both) < 2:
                pairs.append(PairAgreement(a, b, len(both), None, None))
                continue
            if ordinal:
                x = [f.choice(u).value or 0.0 for u, _ in both]
                y = [f.choice(v).value or 0.0 for _, v in both]
                levels = sorted({c.value for c in f.choices if c.value is not None})
                kappa = cohen_kappa(x, y, "quadratic", levels)
            else:
                kappa = cohen_kappa([u for u, _ in both], [v for _, v in both], None, keys)
            share = sum(u == v for u, v in both) / len(both)
            pairs.append(PairAgreement(a, b, len(both), _finite(kappa), share))
        out.append(FieldAgreement(f.name, rel.to_dict(), pairs))
    return out
