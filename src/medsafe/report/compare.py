"""Paired comparison of two runs on the same items (joined by item id, in SQL).

Binary metrics (MCQ correctness, guardian safe/unsafe) use McNemar's test (exact below 25
discordant pairs); ordinal and continuous ones (harmfulness 1-5, per-turn safety 0-10) use the
Wilcoxon signed-rank test. The delta ``mean(b - a)`` gets a paired-bootstrap 95% CI (normal
approximation above ``BOOTSTRAP_MAX_N`` pairs). Per-category p-values are adjusted with Holm or
Benjamini-Hochberg across categories. Each run's own mean and interval (over all its items,
paired or not) are the RunResults figures, shown beside the paired ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.stats import norm

from medsafe.errors import StoreError
from medsafe.report.data import MetricKey, RunRef, metric_key, resolve_metric
from medsafe.results import Estimate, RunResults, load_results
from medsafe.results.estimate import BOOTSTRAP_MAX_N
from medsafe.stats import (
    adjust_pvalues,
    mcnemar,
    minimum_detectable_effect,
    paired_bootstrap_diff,
    wilcoxon_signed_rank,
)
from medsafe.stats.normal import Z95
from medsafe.store.paired import PairedStores

Adjust = Literal["holm", "bh"]
FloatArray = NDArray[np.float64]


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class PairedResult:
    """One paired comparison: means, delta = b - a with 95% CI, test, p (and adjusted p)."""

    metric: str
    a: float
    b: float
    delta: float
    ci95: tuple[float, float] | None
    test: str
    p: float | None
    n_pairs: int
    p_adjusted: float | None = None

    def to_dict(self, *, adjusted: bool = False) -> dict[str, Any]:
        """Plain JSON (non-finite numbers become null)."""
        out: dict[str, Any] = {
            "metric": self.metric,
            "a": _num(self.a),
            "b": _num(self.b),
            "delta": _num(self.delta),
            "ci95": None if self.ci95 is None else [_num(v) for v in self.ci95],
            "test": self.test,
            "p": _num(self.p),
            "n_pairs": self.n_pairs,
        }
        if adjusted:
            out["p_adjusted"] = _num(self.p_adjusted)
        return out


@dataclass(frozen=True)
class Comparison:
    """Run B against run A on one metric, overall and per category."""

    run_a: str
    run_b: str
    metric: MetricKey
    binary: bool
    adjust: Adjust
    overall: PairedResult
    by_category: dict[str, PairedResult]
    mde: dict[str, Any]
    only_a: int
    only_b: int
    estimates: tuple[Estimate, Estimate] | None = None
    """Each run's own mean with its interval (RunResults), over all of its items."""
    unscored: int = 0
    """Items in both runs left out of the pairs: no value for the metric in one of them."""

    @property
    def unpaired(self) -> int:
        """Items of either run not in the pairs: only in A, only in B, or unscored."""
        return self.only_a + self.only_b + self.unscored

    def to_dict(self) -> dict[str, Any]:
        """The ``medsafe compare --json`` object."""
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "metric": self.metric.name,
            "scale": None if self.metric.scale is None else self.metric.scale.model_dump(),
            "higher_is_better": self.metric.higher_is_better,
            "runs": None
            if self.estimates is None
            else {
                self.run_a: self.estimates[0].model_dump(mode="json"),
                self.run_b: self.estimates[1].model_dump(mode="json"),
            },
            "adjust": self.adjust,
            "overall": self.overall.to_dict(),
            "by_category": {c: r.to_dict(adjusted=True) for c, r in self.by_category.items()},
            "mde": self.mde,
            "unpaired": {
                "only_a": self.only_a,
                "only_b": self.only_b,
                "unscored": self.unscored,
                "total": self.unpaired,
            },
        }


def _delta_ci(a: FloatArray, b: FloatArray) -> tuple[float, float] | None:
    n = a.size
    if n < 2:
        return None
    if n <= BOOTSTRAP_MAX_N:
        ci = paired_bootstrap_diff(a, b, seed=0).ci
        return (ci.lo, ci.hi)
    d = b - a
    half = Z95 * float(d.std(ddof=1)) / math.sqrt(n)
    return (float(d.mean()) - half, float(d.mean()) + half)


def compare_arrays(a: FloatArray, b: FloatArray, *, binary: bool, metric: str) -> PairedResult:
    """Paired test and delta CI for item-aligned arrays ``a`` and ``b`` (no NaN)."""
    if a.size == 0:
        nan = float("nan")
        return PairedResult(metric, nan, nan, nan, None, "none", None, 0)
    test = mcnemar(a, b) if binary else wilcoxon_signed_rank(a, b)
    return PairedResult(
        metric=metric,
        a=float(a.mean()),
        b=float(b.mean()),
        delta=float((b - a).mean()),
        ci95=_delta_ci(a, b),
        test=test.test,
        p=test.p,
        n_pairs=int(a.size),
    )


def detectable_effect(a: FloatArray, b: FloatArray, *, binary: bool) -> dict[str, Any]:
    """Minimum detectable effect (alpha 0.05, power 0.8) for these pairs.

    Binary: Connor (1987) for McNemar with ``p0 = mean(a)`` and the observed discordant rate.
    Otherwise the paired normal approximation ``(z_0.975 + z_0.8) sd(b - a) / sqrt(n)``.
    """
    n = int(a.size)
    if n < 2:
        return {"effect": None, "n": n, "design": None}
    if binary:
        psi = float(np.mean(a != b))
        p0 = float(a.mean())
        result = minimum_detectable_effect(n, p0=p0, discordant_rate=psi if psi > 0 else None)
        return result.to_dict()
    sd = float((b - a).std(ddof=1))
    effect = (float(norm.ppf(0.975)) + float(norm.ppf(0.8))) * sd / math.sqrt(n)
    return {"effect": _num(effect), "n": n, "alpha": 0.05, "power": 0.8, "design": "paired_normal"}


@dataclass(frozen=True)
class Pairs:
    """Item-aligned values of one metric in two runs."""

    categories: list[str]
    a: FloatArray
    b: FloatArray
    only_a: int
    only_b: int
    unscored: int = 0
    """Items in both runs without a value for the metric in one of them (not paired)."""


def _keys(results: RunResults) -> dict[str, MetricKey]:
    """Every metric of a run by the names ``compare --metric`` accepts: ``scorer:judge`` pairs
    and each scorer's own name (its headline: the jury, or its only judge)."""
    out: dict[str, MetricKey] = {}
    for name, block in results.scorers.items():
        if block.ok:
            out[name] = metric_key(block)
    return out


def _default_metric(shared: dict[str, MetricKey], a: RunResults) -> MetricKey:
    """A judged scorer's headline first, then binary metrics, then the rest, by name."""
    if not shared:
        raise StoreError("the two runs have no scorer in common")

    def rank(name: str) -> tuple[int, str]:
        block = a.scorers[name]
        if block.headline is not None:
            return (0, name)
        if ":" in name:
            return (3, name)
        return (1 if block.scale.kind == "binary" else 2, name)

    return shared[min(shared, key=rank)]


class PairedConnection:
    """Both runs' results and their item-aligned values (run B may be in another store)."""

    def __init__(
        self,
        ref_a: RunRef,
        ref_b: RunRef,
        results: tuple[RunResults, RunResults] | None = None,
    ) -> None:
        if results is None:
            results = (load_results(ref_a.db, ref_a.run_id), load_results(ref_b.db, ref_b.run_id))
        self.results_a, self.results_b = results
        self.stores = PairedStores(ref_a.db, ref_b.db)
        self.ref_a, self.ref_b = ref_a, ref_b
        self._unpaired: tuple[int, int] | None = None

    def unpaired(self) -> tuple[int, int]:
        """Items only in run A, only in run B (counted once per pair of runs)."""
        if self._unpaired is None:
            self._unpaired = self.stores.unpaired(self.ref_a.run_id, self.ref_b.run_id)
        return self._unpaired

    def shared(self) -> dict[str, MetricKey]:
        """Metrics (by name) with ``ok`` scores in both runs."""
        b = _keys(self.results_b)
        return {n: k for n, k in _keys(self.results_a).items() if n in b}

    def shared_metrics(self) -> list[MetricKey]:
        """The distinct (scorer, judge) metrics both runs have."""
        return sorted(set(self.shared().values()))

    def estimates(self, key: MetricKey) -> tuple[Estimate, Estimate]:
        """Each run's own mean of ``key`` with its interval (RunResults)."""
        return (
            self.results_a.scorers[key.name].estimate,
            self.results_b.scorers[key.name].estimate,
        )

    def pairs(self, key: MetricKey) -> Pairs:
        """Item-aligned values of ``key`` (one SQL join; pairs with a NULL value dropped)."""
        nulls = {}
        if key.scale is not None and key.scale.null_value is not None:
            nulls[key.scorer] = key.scale.null_value
        rows = self.stores.pairs(self.ref_a.run_id, self.ref_b.run_id, key.scorer, key.judge, nulls)
        categories, va, vb = zip(*rows, strict=True) if rows else ((), (), ())
        only_a, only_b = self.unpaired()
        in_both = self.results_a.n - only_a
        return Pairs(
            categories=list(categories),
            a=np.array(va, dtype=np.float64),
            b=np.array(vb, dtype=np.float64),
            only_a=only_a,
            only_b=only_b,
            unscored=max(0, in_both - len(rows)),
        )

    def close(self) -> None:
        """Close the connection."""
        self.stores.close()

    def __enter__(self) -> PairedConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def compare_pairs(
    pairs: Pairs,
    key: MetricKey,
    *,
    adjust: Adjust,
    run_a: str,
    run_b: str,
    estimates: tuple[Estimate, Estimate] | None = None,
) -> Comparison:
    """Overall and per-category comparison of aligned pairs; category p adjusted together."""
    if pairs.a.size == 0:
        raise StoreError(f"runs {run_a!r} and {run_b!r} share no scored items for {key.name!r}")
    declared = key.scale is not None and key.scale.kind == "binary"
    values_binary = np.isin(pairs.a, (0.0, 1.0)).all() and np.isin(pairs.b, (0.0, 1.0)).all()
    binary = bool(declared and values_binary)
    overall = compare_arrays(pairs.a, pairs.b, binary=binary, metric=key.name)
    names, codes = np.unique(np.array(pairs.categories, dtype=str), return_inverse=True)
    results = {}
    for code, cat in enumerate(names.tolist()):
        sel = codes == code
        results[cat] = compare_arrays(pairs.a[sel], pairs.b[sel], binary=binary, metric=key.name)
    raw = [np.nan if r.p is None else r.p for r in results.values()]
    adjusted = adjust_pvalues(raw, method=adjust) if raw else np.array([])
    by_category = {
        cat: PairedResult(**{**r.__dict__, "p_adjusted": _num(float(q))})
        for (cat, r), q in zip(results.items(), adjusted, strict=True)
    }
    return Comparison(
        run_a=run_a,
        run_b=run_b,
        metric=key,
        binary=binary,
        adjust=adjust,
        overall=overall,
        by_category=by_category,
        mde=detectable_effect(pairs.a, pairs.b, binary=binary),
        only_a=pairs.only_a,
        only_b=pairs.only_b,
        estimates=estimates,
        unscored=pairs.unscored,
    )


def compare_runs(
    ref_a: RunRef, ref_b: RunRef, *, metric: str | None = None, adjust: Adjust = "holm"
) -> Comparison:
    """Compare run B with run A on ``metric`` (a name as ``results`` spells it; default: a
    judged scorer's headline, then a binary metric, then any other)."""
    with PairedConnection(ref_a, ref_b) as paired:
        shared = paired.shared()
        if metric is None:
            key = _default_metric(shared, paired.results_a)
        elif metric in shared:
            key = shared[metric]
        else:
            key = resolve_metric(metric, list(shared.values()))
        return compare_pairs(
            paired.pairs(key),
            key,
            adjust=adjust,
            run_a=ref_a.run_id,
            run_b=ref_b.run_id,
            estimates=paired.estimates(key),
        )
