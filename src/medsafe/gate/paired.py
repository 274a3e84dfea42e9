"""Non-inferiority of a candidate run against a baseline run on the same items.

Items are paired by id (run B may live in another store). Units are clustered when several
items are one question (``ID#rK``: the rotations of item ``ID``); a dialogue is one item whose
value is the mean of its judged turns, so its turns never count as separate units. Binary
outcomes of unclustered items get Tango's score test; everything else the cluster-robust t-test
(:mod:`medsafe.stats.noninferiority`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from medsafe.errors import ConfigError, StoreError
from medsafe.gate.metrics import Metric
from medsafe.report.data import RunRef
from medsafe.results import RunResults
from medsafe.stats.noninferiority import (
    NonInferiority,
    cluster_noninferiority,
    tango_noninferiority,
)
from medsafe.store.paired import PairedStores
from medsafe.store.schema_gate import paired_units, run_item_count

_ROTATION = re.compile(r"#r\d+$")
PAIRABLE = ("accuracy", "mean", "harmful_share")
"""Which figures non-inferiority can pair item by item."""


def cluster_of(item_id: str) -> str:
    """The unit an item belongs to: its base question for a rotation, else itself."""
    return _ROTATION.sub("", item_id)


@dataclass(frozen=True)
class PairedHarm:
    """Item-aligned harm values (higher = worse) of both runs, with their clusters."""

    candidate: np.ndarray
    baseline: np.ndarray
    clusters: list[str]
    binary: bool
    dropped: int
    """Pairs left out: no verdict in one of the runs."""

    @property
    def clustered(self) -> bool:
        """Whether some cluster holds more than one item."""
        return len(set(self.clusters)) < len(self.clusters)


def paired_harm(
    metric: Metric, candidate: RunRef, baseline: RunRef, results: RunResults
) -> PairedHarm:
    """The metric's item values in both runs in the harm orientation; refuses unpaired runs."""
    if metric.part not in PAIRABLE or metric.scorer is None or "[" in metric.name:
        raise ConfigError(
            f"non-inferiority pairs item values: use accuracy, NAME.mean or NAME.harmful_share "
            f"over the whole run, not {metric.name!r}"
        )
    block = results.scorers.get(metric.scorer)
    if block is None:
        raise StoreError(f"run {candidate.run_id!r} has no scores of {metric.scorer!r}")
    if block.judge == "jury":
        own = results.scorers.get(block.scorer)
        judges = (own.judges if own is not None else None) or ["JUDGE"]
        first = f"{block.scorer}:{judges[0]}"
        raise ConfigError(
            f"{metric.name!r} is a jury's figure; non-inferiority pairs one judge's verdicts "
            f"item by item: name one judge, e.g. {first}.{metric.part}"
        )
    scale = block.scale
    nulls = {block.scorer: scale.null_value} if scale.null_value is not None else {}
    with PairedStores(candidate.db, baseline.db) as stores:
        try:
            only_c, only_b = stores.unpaired(candidate.run_id, baseline.run_id)
        except Exception as exc:  # an attached store without the run's tables
            raise StoreError(f"cannot pair the runs: {exc}") from None
        if run_item_count(stores.conn, stores.schema_b, baseline.run_id) == 0:
            raise StoreError(f"baseline run {baseline.run_id!r} is not in {baseline.db}")
        if only_c or only_b:
            raise StoreError(
                f"runs {candidate.run_id!r} and {baseline.run_id!r} are not paired: {only_c} "
                f"items only in the candidate, {only_b} only in the baseline. Non-inferiority "
                "needs both runs on the same items (run the baseline model on the same suite)."
            )
        rows = paired_units(
            stores.conn,
            stores.schema_b,
            candidate.run_id,
            baseline.run_id,
            block.scorer,
            block.judge,
            nulls,
        )
    cand: list[float] = []
    base: list[float] = []
    clusters: list[str] = []
    dropped = 0
    for item_id, label_c, value_c, label_b, value_b in rows:
        if metric.part == "harmful_share":
            hc = scale.is_positive(label_c, value_c)
            hb = scale.is_positive(label_b, value_b)
            if hc is None or hb is None:
                dropped += 1
                continue
            cand.append(float(hc))
            base.append(float(hb))
        else:
            if value_c is None or value_b is None:
                dropped += 1
                continue
            sign = -1.0 if scale.higher_is_safer else 1.0
            cand.append(sign * float(value_c))
            base.append(sign * float(value_b))
        clusters.append(cluster_of(item_id))
    if not cand:
        raise StoreError(
            f"runs {candidate.run_id!r} and {baseline.run_id!r} share no scored items for "
            f"{metric.name!r}"
        )
    c, b = np.array(cand), np.array(base)
    binary = metric.part == "harmful_share" or scale.kind == "binary"
    if binary and metric.part != "harmful_share" and scale.higher_is_safer:
        c, b = c + 1.0, b + 1.0  # -value -> 1 - value: the 0/1 harm indicator
    binary = binary and bool(np.isin(c, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all())
    return PairedHarm(c, b, clusters, binary, dropped)


def noninferiority(pairs: PairedHarm, margin: float, alpha: float) -> NonInferiority:
    """Tango's test for unclustered 0/1 outcomes, else the cluster-robust t-test."""
    if pairs.binary and not pairs.clustered:
        return tango_noninferiority(pairs.candidate, pairs.baseline, margin, alpha)
    clusters = pairs.clusters if pairs.clustered else None
    return cluster_noninferiority(pairs.candidate - pairs.baseline, clusters, margin, alpha)
