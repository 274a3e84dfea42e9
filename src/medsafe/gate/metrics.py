"""The gate's metric catalogue: every :class:`~medsafe.results.RunResults` figure a rule may name,
each with its value, its interval as the results layer computed it, and how to read it.

Names (docs/governance.md, "Metrics"):

- ``accuracy``, ``accuracy[CATEGORY]``, ``accuracy@LANGUAGE``: MCQ accuracy (Wilson);
- ``circular_accuracy``: circular MCQ accuracy over base questions (rotated runs);
- ``NAME.mean``, ``NAME.mean[CATEGORY]``: a scorer's item-level mean (``NAME`` is ``scorer``
  or ``scorer:judge``; a scorer's own name with two or more judges is the jury);
- ``NAME.harmful_share``, ``NAME.harmful_share[CATEGORY]``: the share positive under the
  scale's rule (the guardian's unsafe rate is ``guardian.harmful_share``);
- ``NAME.corrected_rate``: the harmful share corrected for the judge's errors (Rogan-Gladen);
- ``NAME.coverage``, ``NAME.quality``: a jury's coverage, MedES quality of safe answers;
- ``asr``, ``asr.strategy[S]``, ``asr.category[C]``, ``asr.language[L]``: red-team attack
  success rate (per conversation, Wilson); ``METRIC.asr`` for a non-primary turn metric;
- ``METRIC.last_turn_median``, ``METRIC.last_turn_mean``: the per-turn metric at the last turn
  (order-statistic median CI; cluster-bootstrap mean CI);
- ``METRIC.decline``: the first-vs-last turn effect (rank-biserial r): listed, but with no
  interval it cannot carry a bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from medsafe.results import Estimate, RunResults, ScorerResults

Kind = Literal["proportion", "mean", "median", "effect"]


@dataclass(frozen=True)
class Metric:
    """One gate-able figure of a run."""

    name: str
    description: str
    kind: Kind
    value: float | None
    ci95: tuple[float, float] | None
    n: int
    method: str | None
    higher_is_safer: bool | None
    """Which direction is safer (None when the figure has no direction, e.g. coverage)."""
    clustered: str | None = None
    """Why the figure's units are not independent (the gate refuses bound rules on it)."""
    scorer: str | None = None
    """The ``scorer:judge`` block behind a scorer figure (preconditions and pairing)."""
    part: str | None = None
    """Which figure of the scorer (``mean``, ``harmful_share``...) or ``accuracy``."""

    @property
    def has_interval(self) -> bool:
        """Whether the figure has a value and an interval."""
        return self.value is not None and self.ci95 is not None


def _of(
    name: str,
    description: str,
    kind: Kind,
    est: Estimate,
    higher: bool | None,
    **kw: str | None,
) -> Metric:
    return Metric(name, description, kind, est.value, est.ci95, est.n, est.method, higher, **kw)


def _rotated(results: RunResults) -> str | None:
    if results.circular is None:
        return None
    return (
        "rotations of one question are not independent items: gate on circular_accuracy "
        "(one unit per base question)"
    )


def _scorer_metrics(name: str, block: ScorerResults) -> list[Metric]:
    scale = block.scale
    title = scale.title
    higher = scale.higher_is_safer
    key = name
    out = [
        _of(
            f"{name}.mean",
            f"{title}: item-level mean",
            "proportion" if scale.kind == "binary" and not block.per_turn else "mean",
            block.estimate,
            higher,
            scorer=key,
            part="mean",
        )
    ]
    for cat, group in block.by_category.items():
        out.append(
            _of(
                f"{name}.mean[{cat}]",
                f"{title}: mean in {cat}",
                "proportion" if scale.kind == "binary" and not block.per_turn else "mean",
                group.estimate,
                higher,
                scorer=key,
                part="mean",
            )
        )
    if block.harmful_share is not None:
        rule = scale.positive or "?"
        out.append(
            _of(
                f"{name}.harmful_share",
                f"share harmful by {name} (positive: {rule})",
                "proportion",
                block.harmful_share,
                False,
                scorer=key,
                part="harmful_share",
            )
        )
        for cat, group in block.by_category.items():
            if group.harmful_share is not None:
                out.append(
                    _of(
                        f"{name}.harmful_share[{cat}]",
                        f"share harmful by {name} in {cat}",
                        "proportion",
                        group.harmful_share,
                        False,
                        scorer=key,
                        part="harmful_share",
                    )
                )
    if block.corrected_rate is not None:
        out.append(
            _of(
                f"{name}.corrected_rate",
                f"{title}: harmful share corrected for judge error (Rogan-Gladen)",
                "proportion",
                block.corrected_rate.estimate,
                False,
                scorer=key,
                part="corrected_rate",
            )
        )
    if block.coverage is not None:
        out.append(
            _of(
                f"{name}.coverage",
                f"{title}: share of units the jury covers",
                "proportion",
                block.coverage,
                True,
                scorer=key,
                part="coverage",
            )
        )
    if block.quality_score is not None:
        out.append(
            _of(
                f"{name}.quality",
                f"{title}: quality of the answers that were not risky",
                "mean",
                block.quality_score,
                True,
                scorer=key,
                part="quality",
            )
        )
    return out


def _turn_metrics(results: RunResults) -> list[Metric]:
    out: list[Metric] = []
    primary = results.turn_metric
    for metric, tm in results.turn_metrics.items():
        higher = tm.scale.higher_is_safer
        prefix = "" if metric == primary else f"{metric}."
        out.append(
            _of(f"{prefix}asr", f"{metric}: attack success rate", "proportion", tm.asr, False)
        )
        for label, table in (
            ("strategy", tm.asr_by_strategy),
            ("category", tm.asr_by_category),
            ("language", tm.asr_by_language),
        ):
            for key, est in table.items():
                if not key:
                    continue  # units without a strategy/category/language: only in the total
                out.append(
                    _of(
                        f"{prefix}asr.{label}[{key}]",
                        f"{metric}: attack success rate, {label} {key}",
                        "proportion",
                        est,
                        False,
                    )
                )
        if tm.by_turn:
            last = tm.by_turn[-1]
            out.append(
                Metric(
                    f"{metric}.last_turn_median",
                    f"{metric}: median at turn {last.turn} (order-statistic CI)",
                    "median",
                    last.median,
                    last.median_ci95,
                    last.n,
                    "order_statistic",
                    higher,
                )
            )
            out.append(
                Metric(
                    f"{metric}.last_turn_mean",
                    f"{metric}: mean at turn {last.turn}",
                    "mean",
                    last.mean,
                    last.ci95,
                    last.n,
                    last.method,
                    higher,
                )
            )
        test = tm.decline.get("first_vs_last") if tm.decline else None
        if isinstance(test, dict):
            effect = test.get("effect_size")
            out.append(
                Metric(
                    f"{metric}.decline",
                    f"{metric}: first-vs-last turn effect (rank-biserial r, Wilcoxon p "
                    f"{test.get('p')}); no interval",
                    "effect",
                    None if effect is None else float(effect),
                    None,
                    int(test.get("n") or 0),
                    None,
                    None,
                )
            )
    return out


def catalogue(results: RunResults) -> dict[str, Metric]:
    """Every gate-able figure of ``results`` by name (docs/governance.md, "Metrics")."""
    rotated = _rotated(results)
    out: list[Metric] = []
    if results.mcq.n:
        groups = [("accuracy", "MCQ accuracy (unextracted counts as wrong)", results.mcq)]
        groups += [
            (f"accuracy[{cat}]", f"MCQ accuracy in {cat}", group.mcq)
            for cat, group in results.by_category.items()
            if group.mcq.n
        ]
        groups += [
            (f"accuracy@{lang}", f"MCQ accuracy in {lang}", group.mcq)
            for lang, group in results.by_language.items()
            if group.mcq.n
        ]
        for name, title, estimate in groups:
            out.append(
                _of(
                    name,
                    title,
                    "proportion",
                    estimate,
                    True,
                    clustered=rotated,
                    part="accuracy",
                    scorer="mcq",
                )
            )
    if results.circular is not None:
        out.append(
            _of(
                "circular_accuracy",
                "circular MCQ accuracy (a base question counts when every rotation is right)",
                "proportion",
                results.circular.estimate,
                True,
            )
        )
    for name, block in sorted(results.scorers.items()):
        if name == "mcq" or name.startswith("mcq."):
            continue  # the accuracy figures above
        out.extend(_scorer_metrics(name, block))
    out.extend(_turn_metrics(results))
    return {m.name: m for m in out}
