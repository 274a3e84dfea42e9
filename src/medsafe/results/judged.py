"""Judged scorers: the headline entry per scorer (the jury with 2+ judges, else the judge),
agreement between judges, and the quality of the answers that were not risky.

Agreement (2+ judges): Cohen's kappa per judge pair on what the scale makes comparable
(quadratic-weighted on ordinal values; nominal on each rubric criterion met when the scores
carry criteria; nominal on the positive rule otherwise), Krippendorff's alpha at the scale's
level of measurement, Spearman's rho, and the share of units where judges differ by more than
the disagreement threshold (scorer option ``disagreement``, else the scale's).
"""

from __future__ import annotations

import json
import math
import sqlite3
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from medsafe.judges.jury import JURY
from medsafe.results.estimate import ALPHA_MAX_UNITS, bootstrap_mean, proportion
from medsafe.results.models import Agreement, Disagreements, Estimate, ScorerResults
from medsafe.scale import Scale
from medsafe.schema import ScorerSpec
from medsafe.store import aggregates as sql
from medsafe.store.aggregates import VerdictRow

HUMAN = "human"
"""The judge of final human labels (written by review tasks): compared with the LLM judges,
never one of them."""
MAX_LISTED = 100
"""At most this many disagreeing units are listed by id."""
COVERAGE_SHIFT = 0.10
"""Warn when a category's share of the units the jury misses differs by more than this from
its share of the units it covers (in a category with at least :data:`COVERAGE_MIN_UNITS`)."""
COVERAGE_MIN_UNITS = 5


def _kappa(scale: Scale, a: list[Any], b: list[Any], weighted: bool) -> float | None:
    from medsafe.stats import cohen_kappa

    if len(a) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if weighted:
            levels = [int(v) for v in scale.levels]
            value = cohen_kappa([int(x) for x in a], [int(y) for y in b], "quadratic", levels)
        else:
            value = cohen_kappa(a, b)
    return None if math.isnan(value) else value


def _sample(matrix: Any) -> Any:
    """At most :data:`ALPHA_MAX_UNITS` columns (units) of a judges x units array: a seeded
    random sample, in order."""
    import numpy as np

    n = matrix.shape[1]
    if n <= ALPHA_MAX_UNITS:
        return matrix
    keep = np.sort(np.random.default_rng(0).choice(n, ALPHA_MAX_UNITS, replace=False))
    return matrix[:, keep]


def _kappa_inputs(
    scale: Scale, units: sql.JudgeUnits, x: int, y: int
) -> tuple[list[Any], list[Any], str, bool]:
    """Paired labels for kappa (units both judges rated), what they are, and whether kappa is
    quadratic-weighted: the ordinal values; each rubric criterion met; the positive rule."""
    vx, vy = units.values[x], units.values[y]
    both = [u for u in range(len(units.keys)) if vx[u] is not None and vy[u] is not None]
    if scale.kappa == "quadratic" and scale.levels:
        return (
            [vx[u] for u in both],
            [vy[u] for u in both],
            "quadratic-weighted, on the scores",
            True,
        )
    a: list[Any] = []
    b: list[Any] = []
    if units.criteria is not None:
        cx, cy = units.criteria[x], units.criteria[y]
        for u in both:
            left, right = json.loads(cx[u] or "[]"), json.loads(cy[u] or "[]")
            if len(left) == len(right):
                a.extend(int(c["met"]) for c in left)
                b.extend(int(c["met"]) for c in right)
        return a, b, "nominal, on each criterion met / not met", False
    rule = scale.rule()
    if rule is not None:
        lx, ly = units.labels[x], units.labels[y]
        for u in both:
            pa, pb = rule.is_positive(lx[u], vx[u]), rule.is_positive(ly[u], vy[u])
            if pa is not None and pb is not None:
                a.append(int(pa))
                b.append(int(pb))
        return a, b, f"nominal, on positive ({rule.text})", False
    return [vx[u] for u in both], [vy[u] for u in both], "nominal, on the scores", False


def _needs_criteria(scale: Scale) -> bool:
    """Kappa on rubric criteria: a scale that is neither ordinal-weighted nor ruled."""
    return not (scale.kappa == "quadratic" and scale.levels) and scale.rule() is None


def agreement(
    scale: Scale, judges: list[str], units: sql.JudgeUnits, threshold: float
) -> Agreement:
    """Kappa, alpha, Spearman and the disagreement share between 2+ judges of one scorer."""
    import numpy as np

    from medsafe.stats import disagreements, krippendorff_alpha, spearman

    matrix = np.array(
        [[np.nan if v is None else v for v in column] for column in units.values], dtype=float
    )
    n_units = matrix.shape[1]
    alpha = krippendorff_alpha(_sample(matrix), scale.alpha_level) if n_units else math.nan
    pairs: dict[str, dict[str, Any]] = {}
    basis = ""
    for x, y in combinations(range(len(judges)), 2):
        a, b, basis, weighted = _kappa_inputs(scale, units, x, y)
        rho = spearman(matrix[x], matrix[y])
        split = disagreements(matrix[x], matrix[y], threshold)
        pairs[f"{judges[x]}|{judges[y]}"] = {
            "kappa": _kappa(scale, a, b, weighted),
            "kappa_basis": basis,
            "spearman": None if math.isnan(rho.statistic) else rho.statistic,
            "spearman_p": None if math.isnan(rho.p) else rho.p,
            "n": rho.n,
            "disagreement_share": None if math.isnan(split.share) else split.share,
        }
    rated = np.isfinite(matrix).sum(axis=0) >= 2
    high = np.where(np.isfinite(matrix), matrix, -np.inf).max(axis=0)
    low = np.where(np.isfinite(matrix), matrix, np.inf).min(axis=0)
    flagged = np.flatnonzero(rated & (high - low > threshold))
    kappas = [p["kappa"] for p in pairs.values() if p["kappa"] is not None]
    rhos = [p["spearman"] for p in pairs.values() if p["spearman"] is not None]
    share = proportion(int(flagged.size), int(rated.sum()))
    first = next(iter(pairs.values()))
    return Agreement(
        judges=judges,
        n_units=int(rated.sum()),
        kappa=sum(kappas) / len(kappas) if kappas else None,
        kappa_basis=basis,
        alpha=None if math.isnan(alpha) else alpha,
        alpha_level=scale.alpha_level,
        spearman=sum(rhos) / len(rhos) if rhos else None,
        spearman_p=first["spearman_p"] if len(pairs) == 1 else None,
        disagreements=Disagreements(
            threshold=threshold,
            value=share.value,
            ci95=share.ci95,
            n=share.n,
            units=[
                {"item_id": units.keys[u][0], "turn": units.keys[u][1]}
                for u in flagged[:MAX_LISTED].tolist()
            ],
        ),
        pairs=pairs if len(pairs) > 1 else None,
    )


def _quality(rows: Sequence[VerdictRow]) -> Any:
    """Mean quality of the ok verdicts that carry one and were not risky (bootstrap over items)."""
    values: list[float] = []
    items: list[str] = []
    for row in rows:
        if row.status != "ok" or row.value is None or row.risky in (1, True):
            continue
        if row.quality is not None:
            values.append(float(row.quality))
            items.append(row.item_id)
    return bootstrap_mean(values, items) if values else None


def ordered_judges(
    name: str, keys: Iterable[tuple[str, str]], spec: ScorerSpec | None
) -> list[str]:
    """A scorer's named judges (the jury excluded): in the run spec's order, then by name."""
    found = sorted({j for s, j in keys if s == name and j not in ("", name, JURY, HUMAN)})
    order = list(spec.judges) if spec else []
    return [j for j in order if j in found] + [j for j in found if j not in order]


@dataclass(frozen=True)
class JudgedExtras:
    """What judged scorers add beyond their scan: agreement and jury coverage per scorer,
    quality per block."""

    agreements: dict[str, Agreement]
    quality: dict[tuple[str, str], Estimate]
    coverage: dict[str, tuple[Estimate, str | None]] = field(default_factory=dict)
    """Per scorer with 2+ judges: the jury's coverage and the category-shift warning."""
    human: dict[str, Agreement] = field(default_factory=dict)
    """Per scorer with human labels: the human labels against each LLM judge."""


def coverage_warning(rows: Iterable[tuple[str, bool, int]]) -> str | None:
    """A warning when the units the jury misses are spread over categories differently from the
    units it covers (a share difference above :data:`COVERAGE_SHIFT`), else None."""
    covered: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    for category, is_covered, n in rows:
        (covered if is_covered else missed)[category] += n
    n_cov, n_miss = sum(covered.values()), sum(missed.values())
    if not n_cov or not n_miss:
        return None
    shifts = [  # ties go to the category most over-represented among the missed units
        (round(abs(missed[c] / n_miss - covered[c] / n_cov), 9), missed[c] / n_miss, c)
        for c in sorted({*covered, *missed})
        if covered[c] + missed[c] >= COVERAGE_MIN_UNITS
    ]
    worst = max(shifts, default=None)
    if worst is None or worst[0] <= COVERAGE_SHIFT:
        return None
    c = worst[2]
    return (
        f"the jury misses {n_miss} of {n_cov + n_miss} judged units and they differ by category: "
        f"{c or '(none)'} is {100 * missed[c] / n_miss:.0f}% of the missed units vs "
        f"{100 * covered[c] / n_cov:.0f}% of the covered ones, so the jury figure may be biased"
    )


def jury_coverage(
    conn: sqlite3.Connection, run_id: str, name: str, judges: list[str]
) -> tuple[Estimate, str | None]:
    """The share of units any judge was asked about that have a jury value, and the warning."""
    rows = sql.jury_coverage(conn, run_id, name, judges, JURY)
    hits = sum(n for _c, covered, n in rows if covered)
    return proportion(hits, sum(n for _c, _covered, n in rows)), coverage_warning(rows)


def judged_extras(
    conn: sqlite3.Connection,
    run_id: str,
    keys: Iterable[tuple[str, str]],
    scales: Mapping[str, Scale],
    specs: Mapping[str, ScorerSpec],
    *,
    tests: bool = True,
) -> JudgedExtras:
    """Judge agreement of every scorer with two or more named judges (unless ``tests`` is
    False), the jury's coverage of their units, and the quality score of every scorer whose
    scale names a quality extra (reads the store; needs no scorer blocks)."""
    keys = set(keys)
    agreements: dict[str, Agreement] = {}
    coverage: dict[str, tuple[Estimate, str | None]] = {}
    for name in sorted({s for s, _ in keys}):
        judges = ordered_judges(name, keys, specs.get(name))
        if len(judges) > 1 and (name, JURY) in keys:
            coverage[name] = jury_coverage(conn, run_id, name, judges)
        scale = scales.get(name)
        if not tests or len(judges) < 2 or scale is None:
            continue
        spec = specs.get(name)
        options = spec.options if spec else {}
        threshold = float(options.get("disagreement", scale.disagreement or 0.0))
        units = sql.judge_units(conn, run_id, name, judges, criteria=_needs_criteria(scale))
        agreements[name] = agreement(scale, judges, units, threshold)
    human: dict[str, Agreement] = {}
    for name in sorted({s for s, j in keys if j == HUMAN}) if tests else []:
        scale = scales.get(name)
        llm = sorted(j for s, j in keys if s == name and j not in (HUMAN, JURY))
        if scale is None or not llm:
            continue
        spec = specs.get(name)
        threshold = float(
            (spec.options if spec else {}).get("disagreement", scale.disagreement or 0.0)
        )
        raters = [HUMAN, *llm]
        units = sql.judge_units(conn, run_id, name, raters, criteria=_needs_criteria(scale))
        human[name] = agreement(scale, raters, units, threshold)
    quality: dict[tuple[str, str], Estimate] = {}
    for name, scale in scales.items():
        if scale.quality is None:
            continue
        rows: dict[str, list[VerdictRow]] = defaultdict(list)
        for row in sql.quality_rows(conn, run_id, name, scale.quality):
            rows[row.judge].append(row)
        for judge, found in rows.items():
            estimate = _quality(found)
            if estimate is not None:
                quality[(name, judge)] = estimate
    return JudgedExtras(agreements, quality, coverage, human)


def judged_blocks(
    blocks: dict[str, ScorerResults],
    extras: JudgedExtras,
    specs: Mapping[str, ScorerSpec],
) -> dict[str, ScorerResults]:
    """``blocks`` with their quality scores, plus, for each scorer with named judges, its
    headline entry (the jury with 2+ judges, else the judge) with its agreement."""
    out = dict(blocks)
    for key, block in blocks.items():
        found = extras.quality.get((block.scorer, block.judge))
        if found is not None:
            out[key] = block.model_copy(update={"quality_score": found})
    keys = {(b.scorer, b.judge) for b in blocks.values()}
    for name in sorted({s for s, j in keys if j not in ("", s, JURY)}):
        if name in out:
            continue
        judges = ordered_judges(name, keys, specs.get(name))
        headline = f"{name}:{JURY}" if len(judges) > 1 and f"{name}:{JURY}" in out else None
        headline = headline or (f"{name}:{judges[0]}" if judges else None)
        if headline is None or headline not in out:
            continue
        update: dict[str, Any] = {"headline": headline, "judges": judges}
        if name in extras.agreements:
            update["agreement"] = extras.agreements[name]
        if headline == f"{name}:{JURY}" and name in extras.coverage:
            covered, warning = extras.coverage[name]
            shown = {"coverage": covered, "coverage_warning": warning}
            out[headline] = out[headline].model_copy(update=shown)
            update.update(shown)
        out[name] = out[headline].model_copy(update=update)
    for name, versus in extras.human.items():
        for key in (name, f"{name}:{HUMAN}"):
            if key in out:
                out[key] = out[key].model_copy(update={"human_agreement": versus})
    return out
