"""One typed results layer: every aggregate of a run, computed once, in :class:`RunResults`.

``medsafe results``, the report, ``compare``, the gate, the workbench and the alignment builder
all read a run's figures from here; nothing else computes them. Each concern has its module:
counts and MCQ accuracy (:mod:`.counts`), per-scorer means and rates (:mod:`.scores`), juries
and agreement (:mod:`.judged`), calibration (:mod:`.calibration`), red-team dialogues
(:mod:`.redteam`), circular evaluation (:mod:`.circular`); intervals are chosen in
:mod:`.estimate`. The SQL lives in :mod:`medsafe.store.aggregates`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from medsafe.results.models import (
    SCHEMA_VERSION,
    Estimate,
    GroupCounts,
    RunInfo,
    RunResults,
    ScorerResults,
    TurnMetric,
    TurnPoint,
)
from medsafe.scale import Scale
from medsafe.schema import RunSpec
from medsafe.store.sqlite import RunRecord, Store

__all__ = [
    "SCHEMA_VERSION",
    "Estimate",
    "GroupCounts",
    "RunResults",
    "ScorerResults",
    "TurnMetric",
    "TurnPoint",
    "compute_results",
    "load_results",
    "run_scales",
]


def run_scales(spec: RunSpec, names: Iterable[str] = ()) -> dict[str, Scale]:
    """The scale of every score name: as stored with the run, else as the installed scorer
    declares it (runs made before scales were stored); a name no scorer declares is left out
    (its block then says "scale not declared")."""
    scales: dict[str, Scale] = {}
    for scorer in spec.scorers:
        scales.update(scorer.scales)
    missing = [n for n in (*(s.name for s in spec.scorers), *names) if n not in scales]
    if missing:
        from medsafe.errors import RegistryError
        from medsafe.scoring import declared_scales

        for name in missing:
            owner = name.split(".", 1)[0]  # "mcq.partial" is declared by "mcq"
            try:
                declared = declared_scales(owner)
            except RegistryError:
                continue
            scales.update({k: v for k, v in declared.items() if k not in scales})
    return scales


def compute_results(conn: sqlite3.Connection, record: RunRecord) -> RunResults:
    """Every aggregate of one run, from its store connection."""
    from medsafe.results.calibration import with_calibrations
    from medsafe.results.circular import circular_block
    from medsafe.results.counts import group_counts
    from medsafe.results.judged import judged_blocks
    from medsafe.results.scores import scorer_blocks
    from medsafe.store import aggregates as sql

    run_id = record.run_id
    scales = run_scales(record.spec, sql.score_names(conn, run_id))
    total, by_category, by_language = group_counts(conn, run_id)
    blocks = scorer_blocks(conn, run_id, scales)
    judged = sorted({b.scorer for b in blocks.values() if b.judge not in ("", b.scorer)})
    if judged:
        rows = sql.verdict_rows(conn, run_id, judged)
        blocks = judged_blocks(blocks, rows, {s.name: s for s in record.spec.scorers})
    blocks = with_calibrations(conn, run_id, blocks)
    extra = {}
    if sql.has_kind(conn, run_id, "dialogue"):  # numpy and the dialogue statistics only then
        from medsafe.results.redteam import redteam_blocks

        extra = redteam_blocks(conn, run_id, scales)
    return RunResults(
        run_id=run_id,
        model=record.spec.model,
        run=RunInfo(run_id=run_id, created=record.created, spec=record.spec),
        **total.model_dump(exclude={"mcq"}),
        mcq=total.mcq,
        by_category=by_category,
        by_language=by_language,
        scorers=blocks,
        circular=circular_block(conn, run_id),
        **extra,
    )


def load_results(db: str | os.PathLike[str], run_id: str) -> RunResults:
    """The results of run ``run_id`` in the store ``db`` (which must exist)."""
    path = Path(db)
    if not path.is_file():
        from medsafe.errors import StoreError

        raise StoreError(f"{path}: no such store")
    with Store(path) as store:
        return compute_results(store.connection, store.require_run(run_id))
