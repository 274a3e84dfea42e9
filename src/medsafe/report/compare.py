"""Paired comparison of two runs on the same items (joined by item id, in SQL).

Binary metrics (MCQ correctness, guardian safe/unsafe) use McNemar's test (exact below 25
discordant pairs); ordinal and continuous ones (harmfulness 1-5, per-turn safety 0-10) use the
Wilcoxon signed-rank test. The delta ``mean(b - a)`` gets a paired-bootstrap 95% CI (normal
approximation above ``BOOTSTRAP_MAX_N`` pairs). Per-category p-values are adjusted with Holm or
Benjamini-Hochberg across categories.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import norm

from medsafe.errors import StoreError
from medsafe.report.data import (
    BOOTSTRAP_MAX_N,
    Z95,
    FloatArray,
    MetricKey,
    RunRef,
    item_values_sql,
    open_store,
    resolve_metric,
)
from medsafe.stats import (
    adjust_pvalues,
    mcnemar,
    minimum_detectable_effect,
    paired_bootstrap_diff,
    wilcoxon_signed_rank,
)

Adjust = Literal["holm", "bh"]
PREFERRED = ("mcq", "guardian")
"""Metrics ``compare`` picks by default, in this order, when both runs have them."""


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

    def to_dict(self) -> dict[str, Any]:
        """The ``medsafe compare --json`` object."""
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "metric": self.metric.name,
            "higher_is_better": self.metric.higher_is_better,
            "adjust": self.adjust,
            "overall": self.overall.to_dict(),
            "by_category": {c: r.to_dict(adjusted=True) for c, r in self.by_category.items()},
            "mde": self.mde,
            "unpaired": {"only_a": self.only_a, "only_b": self.only_b},
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


_PAIRS_SQL = (
    "WITH va AS ({va}), vb AS ({vb}) "
    "SELECT i.category, va.v, vb.v FROM va JOIN vb ON vb.item_id = va.item_id "
    "JOIN main.items i ON i.run_id = ? AND i.item_id = va.item_id "
    "WHERE va.v IS NOT NULL AND vb.v IS NOT NULL"
)
_UNPAIRED_SQL = (
    "SELECT (SELECT COUNT(*) FROM main.items WHERE run_id = ? AND item_id NOT IN "
    "(SELECT item_id FROM {b}.items WHERE run_id = ?)), "
    "(SELECT COUNT(*) FROM {b}.items WHERE run_id = ? AND item_id NOT IN "
    "(SELECT item_id FROM main.items WHERE run_id = ?))"
)


def _metrics(conn: sqlite3.Connection, run_id: str, schema: str) -> list[MetricKey]:
    rows = conn.execute(
        f"SELECT DISTINCT scorer, judge FROM {schema}.scores WHERE run_id = ? AND status = 'ok' "
        "ORDER BY scorer, judge",
        (run_id,),
    )
    return [MetricKey(s, j) for s, j in rows]


def _default_metric(shared: list[MetricKey]) -> MetricKey:
    if not shared:
        raise StoreError("the two runs have no scorer in common")
    for name in PREFERRED:
        for key in shared:
            if key.name == name:
                return key
    return shared[0]


class PairedConnection:
    """One read connection on run A's store with run B's store attached (if different)."""

    def __init__(self, ref_a: RunRef, ref_b: RunRef) -> None:
        for ref in (ref_a, ref_b):
            with open_store(ref.db) as store:
                store.require_run(ref.run_id)
        self.conn = sqlite3.connect(str(ref_a.db), isolation_level=None)
        self.schema_b = "main"
        if ref_b.db.resolve() != ref_a.db.resolve():
            self.conn.execute("ATTACH DATABASE ? AS rb", (str(ref_b.db),))
            self.schema_b = "rb"
        self.ref_a, self.ref_b = ref_a, ref_b
        self._unpaired: tuple[int, int] | None = None

    def unpaired(self) -> tuple[int, int]:
        """Items only in run A, only in run B (counted once per pair of runs)."""
        if self._unpaired is None:
            a, b = self.ref_a.run_id, self.ref_b.run_id
            row = self.conn.execute(_UNPAIRED_SQL.format(b=self.schema_b), (a, b, b, a)).fetchone()
            self._unpaired = (int(row[0]), int(row[1]))
        return self._unpaired

    def shared_metrics(self) -> list[MetricKey]:
        """Metrics with ``ok`` scores in both runs."""
        a = _metrics(self.conn, self.ref_a.run_id, "main")
        b = set(_metrics(self.conn, self.ref_b.run_id, self.schema_b))
        return [k for k in a if k in b]

    def pairs(self, key: MetricKey) -> Pairs:
        """Item-aligned values of ``key`` (one SQL join; pairs with a NULL value dropped)."""
        a, b = self.ref_a.run_id, self.ref_b.run_id
        sql = _PAIRS_SQL.format(va=item_values_sql("main"), vb=item_values_sql(self.schema_b))
        args = (a, key.scorer, key.judge, b, key.scorer, key.judge, a)
        rows = self.conn.execute(sql, args).fetchall()
        categories, va, vb = zip(*rows, strict=True) if rows else ((), (), ())
        only_a, only_b = self.unpaired()
        return Pairs(
            categories=list(categories),
            a=np.array(va, dtype=np.float64),
            b=np.array(vb, dtype=np.float64),
            only_a=only_a,
            only_b=only_b,
        )

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> PairedConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def compare_pairs(
    pairs: Pairs, key: MetricKey, *, adjust: Adjust, run_a: str, run_b: str
) -> Comparison:
    """Overall and per-category comparison of aligned pairs; category p adjusted together."""
    if pairs.a.size == 0:
        raise StoreError(f"runs {run_a!r} and {run_b!r} share no scored items for {key.name!r}")
    binary = bool(np.isin(pairs.a, (0.0, 1.0)).all() and np.isin(pairs.b, (0.0, 1.0)).all())
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
    )


def compare_runs(
    ref_a: RunRef, ref_b: RunRef, *, metric: str | None = None, adjust: Adjust = "holm"
) -> Comparison:
    """Compare run B with run A on ``metric`` (default: mcq, else guardian, else the first)."""
    with PairedConnection(ref_a, ref_b) as paired:
        shared = paired.shared_metrics()
        key = _default_metric(shared) if metric is None else resolve_metric(metric, shared)
        return compare_pairs(
            paired.pairs(key), key, adjust=adjust, run_a=ref_a.run_id, run_b=ref_b.run_id
        )
