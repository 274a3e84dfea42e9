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
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

from medsafe.results.estimate import bootstrap_mean, proportion
from medsafe.results.models import Agreement, Disagreements, ScorerResults
from medsafe.scale import Scale
from medsafe.schema import ScorerSpec
from medsafe.store.aggregates import VerdictRow

JURY = "jury"
"""The judge name of a jury's combined score (written by ``medsafe.judges``)."""
MAX_LISTED = 100
"""At most this many disagreeing units are listed by id."""

Unit = tuple[str, int]


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


def _kappa_inputs(
    scale: Scale, units: dict[Unit, dict[str, VerdictRow]], x: str, y: str
) -> tuple[list[Any], list[Any], str, bool]:
    """Paired labels for kappa, what they are, and whether kappa is quadratic-weighted."""
    a: list[Any] = []
    b: list[Any] = []
    pairs = [(u[x], u[y]) for u in units.values() if x in u and y in u]
    if scale.kappa == "quadratic" and scale.levels:
        for left, right in pairs:
            a.append(left.value)
            b.append(right.value)
        return a, b, "quadratic-weighted, on the scores", True
    if pairs and all(p[0].criteria and p[1].criteria for p in pairs):
        for left, right in pairs:
            lc, rc = json.loads(left.criteria or "[]"), json.loads(right.criteria or "[]")
            if len(lc) == len(rc):
                a.extend(int(c["met"]) for c in lc)
                b.extend(int(c["met"]) for c in rc)
        return a, b, "nominal, on each criterion met / not met", False
    rule = scale.rule()
    if rule is not None:
        for left, right in pairs:
            pa = rule.is_positive(left.label, left.value)
            pb = rule.is_positive(right.label, right.value)
            if pa is not None and pb is not None:
                a.append(int(pa))
                b.append(int(pb))
        return a, b, f"nominal, on positive ({rule.text})", False
    for left, right in pairs:
        a.append(left.value)
        b.append(right.value)
    return a, b, "nominal, on the scores", False


def agreement(
    scale: Scale, judges: list[str], rows: Sequence[VerdictRow], threshold: float
) -> Agreement:
    """Kappa, alpha, Spearman and the disagreement share between 2+ judges of one scorer."""
    from medsafe.stats import disagreements, krippendorff_alpha, spearman

    units: dict[Unit, dict[str, VerdictRow]] = defaultdict(dict)
    for row in rows:
        if row.judge in judges and row.status == "ok" and row.value is not None:
            units[(row.item_id, -1 if row.turn is None else row.turn)][row.judge] = row
    keys = sorted(units)
    vals = {k: {j: float(r.value or 0.0) for j, r in units[k].items()} for k in keys}
    matrix = [[vals[k].get(j, math.nan) for k in keys] for j in judges]
    alpha = krippendorff_alpha(matrix, scale.alpha_level) if keys else math.nan
    pairs: dict[str, dict[str, Any]] = {}
    basis = ""
    for x, y in combinations(judges, 2):
        a, b, basis, weighted = _kappa_inputs(scale, units, x, y)
        rho = spearman(matrix[judges.index(x)], matrix[judges.index(y)])
        split = disagreements(matrix[judges.index(x)], matrix[judges.index(y)], threshold)
        pairs[f"{x}|{y}"] = {
            "kappa": _kappa(scale, a, b, weighted),
            "kappa_basis": basis,
            "spearman": None if math.isnan(rho.statistic) else rho.statistic,
            "spearman_p": None if math.isnan(rho.p) else rho.p,
            "n": rho.n,
            "disagreement_share": None if math.isnan(split.share) else split.share,
        }
    spread = [
        (k, max(vals[k].values()) - min(vals[k].values())) for k in keys if len(units[k]) >= 2
    ]
    flagged = [k for k, gap in spread if gap > threshold]
    kappas = [p["kappa"] for p in pairs.values() if p["kappa"] is not None]
    rhos = [p["spearman"] for p in pairs.values() if p["spearman"] is not None]
    share = proportion(len(flagged), len(spread))
    first = next(iter(pairs.values()))
    return Agreement(
        judges=judges,
        n_units=len(spread),
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
                {"item_id": k[0], "turn": None if k[1] < 0 else k[1]} for k in flagged[:MAX_LISTED]
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


def judged_blocks(
    blocks: dict[str, ScorerResults],
    rows: Sequence[VerdictRow],
    specs: Mapping[str, ScorerSpec],
) -> dict[str, ScorerResults]:
    """``blocks`` plus, for each scorer with named judges, its headline entry and agreement."""
    by_key: dict[tuple[str, str], list[VerdictRow]] = defaultdict(list)
    for row in rows:
        by_key[(row.scorer, row.judge)].append(row)
    out = dict(blocks)
    for key, block in blocks.items():
        if any(r.quality is not None for r in by_key.get((block.scorer, block.judge), ())):
            out[key] = block.model_copy(
                update={"quality_score": _quality(by_key[(block.scorer, block.judge)])}
            )
    names = sorted({b.scorer for b in blocks.values() if b.judge not in ("", b.scorer)})
    for name in names:
        if name in out:
            continue
        in_store = sorted({j for (s, j) in by_key if s == name and j not in (JURY, "", s)})
        spec = specs.get(name)
        order = list(spec.judges) if spec else []
        judges = [j for j in order if j in in_store] + [j for j in in_store if j not in order]
        headline = f"{name}:{JURY}" if len(judges) > 1 and f"{name}:{JURY}" in out else None
        headline = headline or (f"{name}:{judges[0]}" if judges else None)
        if headline is None or headline not in out:
            continue
        main = out[headline]
        update: dict[str, Any] = {"headline": headline, "judges": judges}
        if len(judges) > 1:
            options = spec.options if spec else {}
            threshold = float(options.get("disagreement", main.scale.disagreement or 0.0))
            all_rows = [r for j in judges for r in by_key[(name, j)]]
            update["agreement"] = agreement(main.scale, judges, all_rows, threshold)
        out[name] = main.model_copy(update=update)
    return out
