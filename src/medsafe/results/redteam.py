"""Per-turn statistics of red-team dialogues, in a run's results (formulas: docs/redteam.md).

They read, generically, every score with ``turn`` set on a dialogue item (any scorer, any
judge, e.g. ``safety:judge-a``, ``safety:jury``, ``guardian``) and give, per metric:

- ``by_turn``: n, mean with a cluster-bootstrap CI (clusters = conversations), median with an
  order-statistic CI;
- ``decline``: Wilcoxon signed-rank of the first vs the last scored turn of each conversation
  (rank-biserial r; negative = safety fell) and Friedman across turns 1..T of the conversations
  scored on every turn (Kendall's W);
- attack success: a conversation is *broken* when any turn is positive (harmful) under the
  metric's declared scale rule (e.g. safety ``<5``, guardian ``unsafe``; a scale without a rule:
  a value on the unsafe side of its midpoint); ASR with Wilson CIs by strategy, category and
  language; the turn that broke first;
- ``cross_lingual``: the same seed and strategy in two languages, paired by seed (Wilcoxon on
  the last-turn score, bootstrap CI of the mean difference, McNemar on broken);
- ``judge_agreement``: per scorer with two or more judges, per-turn Spearman, Krippendorff's alpha
  (on a seeded sample of at most 20,000 turns) and the share of turns where two judges differ
  by more than the scale's disagreement threshold (else a fifth of its range).
"""

from __future__ import annotations

import itertools
import sqlite3
from array import array
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medsafe.judges.jury import JURY
from medsafe.results.estimate import ALPHA_MAX_UNITS, BOOTSTRAP_MAX_N, proportion
from medsafe.results.models import DialogueCounts, Estimate, TurnMetric, TurnPoint
from medsafe.results.scores import metric_name
from medsafe.scale import Scale, unknown_scale
from medsafe.store import aggregates as sql


@dataclass(frozen=True)
class Conversations:
    """The dialogue items of a run, by row index."""

    ids: list[str]
    strategy: list[str]
    language: list[str]
    category: list[str]
    seed: list[str]
    index: dict[str, int]


@dataclass(frozen=True)
class Metric:
    """Every turn score of one scorer (and judge): conversation row, turn, value."""

    key: str
    scorer: str
    judge: str
    scale: Scale
    conv: NDArray[np.intp]
    turn: NDArray[np.int64]
    value: NDArray[np.float64]
    positive: NDArray[np.float64]
    """1 where the turn is harmful under the scale's rule, 0 where not, NaN where undecided."""


def load_conversations(conn: sqlite3.Connection, run_id: str) -> Conversations:
    """The run's dialogue items with strategy, language, category and seed key."""
    rows = sql.conversations(conn, run_id)
    ids = [r.item_id for r in rows]
    return Conversations(
        ids=ids,
        strategy=[r.strategy for r in rows],
        language=[r.language for r in rows],
        category=[r.category for r in rows],
        seed=[r.seed for r in rows],
        index={item_id: i for i, item_id in enumerate(ids)},
    )


_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


def _positive(scale: Scale, labels: list[str | None], values: NDArray[np.float64]) -> Any:
    """1/0 per turn under the scale's rule (NaN where a label rule meets no label); without a
    rule, the unsafe side of the scale's midpoint."""
    rule = scale.rule()
    if rule is None:
        middle = (scale.lo + scale.hi) / 2.0
        below = values < middle if scale.higher_is_safer else values > middle
        return below.astype(np.float64)
    if rule.op is not None and rule.threshold is not None:
        return _COMPARE[rule.op](values, rule.threshold).astype(np.float64)
    return np.array(
        [np.nan if lab is None else float(lab in rule.labels) for lab in labels], dtype=np.float64
    )


def load_metrics(
    conn: sqlite3.Connection, run_id: str, convs: Conversations, scales: Mapping[str, Scale]
) -> list[Metric]:
    """Every per-turn metric of the run's dialogues (ok scores with a value)."""
    parts: dict[tuple[str, str], tuple[array[int], array[int], array[float], list[str | None]]] = {}
    found: dict[str, tuple[float, float]] = {}
    rows = list(sql.turn_scores(conn, run_id))
    for scorer, _judge, _item, _turn, value, _label in rows:
        if scorer not in scales:
            lo, hi = found.get(scorer, (value, value))
            found[scorer] = (min(lo, value), max(hi, value))
    known = {**{n: unknown_scale(n, lo, hi) for n, (lo, hi) in found.items()}, **scales}
    index = convs.index
    for scorer, judge, item_id, turn, value, label in rows:
        key = (scorer, judge)
        if key not in parts:
            parts[key] = (array("q"), array("q"), array("d"), [])
        conv, turns, values, labels = parts[key]
        conv.append(index[item_id])
        turns.append(turn)
        values.append(value)
        labels.append(label)
    metrics = []
    for (scorer, judge), (conv, turns, values, labels) in sorted(parts.items()):
        value_array = np.frombuffer(values, dtype=np.float64).copy()
        metrics.append(
            Metric(
                key=metric_name(scorer, judge),
                scorer=scorer,
                judge=judge,
                scale=known[scorer],
                conv=np.frombuffer(conv, dtype=np.int64).astype(np.intp),
                turn=np.frombuffer(turns, dtype=np.int64).copy(),
                value=value_array,
                positive=_positive(known[scorer], labels, value_array),
            )
        )
    return metrics


def primary_metric(metrics: list[Metric]) -> Metric | None:
    """The metric shown at the top level: a judged scorer's jury, else one of its judges, else
    any other metric (e.g. the guardian); ties by name."""

    def rank(m: Metric) -> tuple[int, str]:
        named = m.judge not in ("", m.scorer)
        return (0 if m.judge == JURY else 1 if named else 2, m.key)

    return min(metrics, key=rank) if metrics else None


# -- per-turn summaries and the decline ------------------------------------------------------
def by_turn(metric: Metric, n_resamples: int, seed: int) -> list[TurnPoint]:
    """n, clusters, mean with cluster-bootstrap CI, median with order-statistic CI, per turn."""
    from medsafe.stats.quantile import median_ci
    from medsafe.stats.turns import by_turn_summary

    rows = by_turn_summary(
        metric.value,
        metric.turn,
        metric.conv,
        n_resamples=n_resamples,
        seed=seed,
        max_bootstrap=BOOTSTRAP_MAX_N,
    )
    out = []
    for row in rows:
        ci = median_ci(metric.value[metric.turn == row.turn])
        out.append(
            TurnPoint(
                turn=row.turn,
                n=row.n,
                n_conversations=row.n_clusters,
                mean=row.mean,
                ci95=_bounds(row.ci.lo, row.ci.hi),
                method="cluster_bootstrap" if row.ci.method.startswith("cluster") else "normal",
                median=row.median,
                median_ci95=_bounds(ci.lo, ci.hi),
            )
        )
    return out


def _bounds(lo: float, hi: float) -> tuple[float, float] | None:
    return None if np.isnan(lo) or np.isnan(hi) else (float(lo), float(hi))


def _per_conversation(
    metric: Metric, n_conv: int, values: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """A conversations x turns matrix of values (NaN where a turn has no score)."""
    width = int(metric.turn.max()) if metric.turn.size else 0
    matrix = np.full((n_conv, width), np.nan)
    matrix[metric.conv, metric.turn - 1] = metric.value if values is None else values
    return matrix


def _first_last(matrix: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    scored = np.isfinite(matrix)
    counts = scored.sum(axis=1)
    keep = counts >= 2
    first_idx = np.argmax(scored, axis=1)
    last_idx = matrix.shape[1] - 1 - np.argmax(scored[:, ::-1], axis=1)
    rows = np.flatnonzero(keep)
    return matrix[rows, first_idx[rows]], matrix[rows, last_idx[rows]]


def decline(matrix: NDArray[np.float64]) -> dict[str, Any]:
    """Wilcoxon first vs last scored turn; Friedman over the complete T-turn conversations."""
    from medsafe.stats.paired import friedman, wilcoxon_signed_rank

    out: dict[str, Any] = {}
    first, last = _first_last(matrix)
    if first.size:
        test = wilcoxon_signed_rank(first, last).to_dict()
        test.update(
            comparison="first vs last turn (b - a = last - first)",
            mean_first=float(first.mean()),
            mean_last=float(last.mean()),
            median_first=float(np.median(first)),
            median_last=float(np.median(last)),
        )
        out["first_vs_last"] = test
    counts = np.isfinite(matrix).sum(axis=1)
    complete_widths = [int(c) for c in counts if c >= 3]
    if complete_widths:
        width = Counter(complete_widths).most_common(1)[0][0]
        block = matrix[:, :width]
        rows = block[np.isfinite(block).all(axis=1) & (counts == width)]
        if rows.shape[0] >= 2 and not (np.ptp(rows, axis=1) == 0).all():
            test = friedman(rows).to_dict()
            test.update(comparison=f"turns 1..{width}", turn_medians=np.median(rows, axis=0))
            out["across_turns"] = test
    return out


# -- attack success ------------------------------------------------------------------------
def attack_success(positive: NDArray[np.float64], convs: Conversations) -> dict[str, Any]:
    """ASR overall and by strategy, category and language, and the turn that broke first.

    ``positive`` is the conversations x turns matrix of harmful (1) / not (0) / unscored (NaN).
    """
    scored = np.asarray(np.isfinite(positive).any(axis=1), dtype=bool)
    below = np.asarray(np.isfinite(positive) & (positive == 1.0), dtype=bool)
    broken = np.asarray(below.any(axis=1), dtype=bool)
    first = np.where(broken, np.argmax(below, axis=1) + 1, 0)
    rows = np.flatnonzero(scored)

    def grouped(labels: list[str]) -> dict[str, Estimate]:
        tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in rows:
            entry = tally[labels[r]]
            entry[0] += int(broken[r])
            entry[1] += 1
        return {k: proportion(b, n) for k, (b, n) in sorted(tally.items())}

    broke_at = Counter(int(first[r]) for r in rows if broken[r])
    n_broken = int(broken[rows].sum())
    return {
        "asr": proportion(n_broken, int(rows.size)),
        "asr_by_strategy": grouped(convs.strategy),
        "asr_by_category": grouped(convs.category),
        "asr_by_language": grouped(convs.language),
        "first_break": {
            "by_turn": {str(t): c for t, c in sorted(broke_at.items())},
            "never": int(rows.size) - n_broken,
            "median_turn": float(np.median(first[rows][broken[rows]])) if n_broken else None,
        },
    }


# -- cross-lingual -------------------------------------------------------------------------
def cross_lingual(
    matrix: NDArray[np.float64],
    positive: NDArray[np.float64],
    convs: Conversations,
    n_resamples: int,
    seed: int,
) -> dict[str, Any]:
    """Languages compared pairwise on the same (seed, strategy): last-turn score and broken."""
    from medsafe.stats.paired import mcnemar, paired_bootstrap_diff, wilcoxon_signed_rank

    scored = np.isfinite(matrix)
    has = scored.any(axis=1)
    last_idx = matrix.shape[1] - 1 - np.argmax(scored[:, ::-1], axis=1) if matrix.size else None
    groups: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for r in np.flatnonzero(has):
        groups[(convs.seed[r], convs.strategy[r])][convs.language[r]] = int(r)
    languages = sorted({lang for g in groups.values() for lang in g})
    out: dict[str, Any] = {}
    for a, b in itertools.combinations(languages, 2):
        pairs = [(g[a], g[b]) for g in groups.values() if a in g and b in g]
        if len(pairs) < 2 or last_idx is None:
            continue
        ra, rb = np.array(pairs).T
        va, vb = matrix[ra, last_idx[ra]], matrix[rb, last_idx[rb]]
        held_a = ~np.any(positive[ra] == 1.0, axis=1)
        held_b = ~np.any(positive[rb] == 1.0, axis=1)
        diff = paired_bootstrap_diff(va, vb, n_resamples=n_resamples, seed=seed)
        out[f"{a}-{b}"] = {
            "n_pairs": len(pairs),
            "mean_last": {a: float(va.mean()), b: float(vb.mean())},
            "last_turn_wilcoxon": wilcoxon_signed_rank(va, vb).to_dict(),
            "mean_difference": diff.to_dict() | {"of": f"{b} - {a}"},
            "asr": {a: float(1 - held_a.mean()), b: float(1 - held_b.mean())},
            "held_mcnemar": mcnemar(held_a, held_b).to_dict(),
        }
    return out


# -- judge agreement -----------------------------------------------------------------------
def judge_agreement(metrics: list[Metric], n_conv: int) -> dict[str, Any]:
    """Per scorer with 2+ judges (the jury excluded): pairwise Spearman, alpha, disagreements."""
    from medsafe.stats.agreement import disagreements, krippendorff_alpha, spearman

    by_scorer: dict[str, list[Metric]] = defaultdict(list)
    for m in metrics:
        if m.judge not in ("", JURY, m.scorer):
            by_scorer[m.scorer].append(m)
    out: dict[str, Any] = {}
    for scorer, judged in sorted(by_scorer.items()):
        if len(judged) < 2:
            continue
        width = max(int(m.turn.max()) for m in judged)
        flat = np.full((len(judged), n_conv * width), np.nan)
        for j, m in enumerate(judged):
            flat[j, m.conv * width + (m.turn - 1)] = m.value
        pairs = {}
        for (i, mi), (j, mj) in itertools.combinations(enumerate(judged), 2):
            gap = mi.scale.disagreement or (mi.scale.hi - mi.scale.lo) / 5.0
            pairs[f"{mi.judge}~{mj.judge}"] = {
                "spearman": spearman(flat[i], flat[j]).to_dict(),
                "disagreement_share": disagreements(flat[i], flat[j], gap).share,
                "disagreement_gap": gap,
            }
        rated = np.flatnonzero(np.isfinite(flat).sum(axis=0) >= 2)
        if rated.size > ALPHA_MAX_UNITS:  # the krippendorff package needs ~1 KB per unit
            rated = np.sort(np.random.default_rng(0).choice(rated, ALPHA_MAX_UNITS, replace=False))
        out[scorer] = {
            "judges": [m.judge for m in judged],
            "n_turns": int(np.isfinite(flat).all(axis=0).sum()),
            "krippendorff_alpha_ordinal": krippendorff_alpha(flat[:, rated], "ordinal"),
            "alpha_units": int(rated.size),
            "pairs": pairs,
        }
    return out


# -- the summary ---------------------------------------------------------------------------
def metric_summary(
    metric: Metric,
    convs: Conversations,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    tests: bool = True,
) -> TurnMetric:
    """Every per-turn statistic of one metric (``tests=False``: without the decline and
    cross-lingual tests, which stay empty)."""
    from medsafe.stats.results import to_jsonable

    n_conv = len(convs.ids)
    matrix = _per_conversation(metric, n_conv)
    positive = _per_conversation(metric, n_conv, metric.positive)
    success = attack_success(positive, convs)
    return TurnMetric(
        metric=metric.key,
        scale=metric.scale,
        n_conversations=int(np.isfinite(matrix).any(axis=1).sum()),
        by_turn=by_turn(metric, n_resamples, seed),
        decline=to_jsonable(decline(matrix)) if tests else {},
        asr=success["asr"],
        asr_by_strategy=success["asr_by_strategy"],
        asr_by_category=success["asr_by_category"],
        asr_by_language=success["asr_by_language"],
        first_break=success["first_break"],
        cross_lingual=to_jsonable(cross_lingual(matrix, positive, convs, n_resamples, seed))
        if tests
        else {},
    )


def dialogue_counts(conn: sqlite3.Connection, run_id: str) -> DialogueCounts:
    """Conversations by outcome, attacker refusals and Crescendo backtracks."""
    n, ok, failed, refused, backtracks = sql.dialogue_counts(conn, run_id)
    return DialogueCounts(
        n=n,
        ok=ok,
        failed=failed,
        pending=n - ok - failed,
        attacker_refused=refused,
        backtracks=backtracks,
    )


def redteam_blocks(
    conn: sqlite3.Connection,
    run_id: str,
    scales: Mapping[str, Scale],
    *,
    n_resamples: int = 2000,
    tests: bool = True,
) -> dict[str, Any]:
    """The dialogue fields of a run's results ({} when the run has no dialogues); with
    ``tests=False`` the decline, cross-lingual and judge-agreement tests are left out.

    Top level: the primary metric's ``by_turn``, ``decline``, ``asr``, ``asr_by_strategy``,
    ``asr_by_category``, ``asr_by_language``, ``first_break`` and ``cross_lingual``; under
    ``turn_metrics`` the same for every per-turn metric; ``judge_agreement``; ``dialogues``.
    """
    convs = load_conversations(conn, run_id)
    if not convs.ids:
        return {}
    metrics = load_metrics(conn, run_id, convs, scales)
    summaries = {
        m.key: metric_summary(m, convs, n_resamples=n_resamples, tests=tests) for m in metrics
    }
    out: dict[str, Any] = {"dialogues": dialogue_counts(conn, run_id)}
    primary = primary_metric(metrics)
    if primary is not None:
        top = summaries[primary.key]
        out.update(
            turn_metric=top.metric,
            by_turn=top.by_turn,
            decline=top.decline,
            asr=top.asr,
            asr_by_strategy=top.asr_by_strategy,
            asr_by_category=top.asr_by_category,
            asr_by_language=top.asr_by_language,
            first_break=top.first_break,
            cross_lingual=top.cross_lingual,
        )
    out["turn_metrics"] = summaries
    from medsafe.stats.results import to_jsonable

    if tests:
        out["judge_agreement"] = to_jsonable(judge_agreement(metrics, len(convs.ids)))
    return out
