"""One typed results layer: every aggregate of a run, computed once, in :class:`RunResults`.

``medsafe results``, the report, ``compare``, the gate, the workbench and the alignment builder
all read a run's figures from here; nothing else computes them. Each concern has its module:
counts and MCQ accuracy (:mod:`.counts`), per-scorer means and rates (:mod:`.scores`), juries
and agreement (:mod:`.judged`), calibration (:mod:`.calibration`), red-team dialogues
(:mod:`.redteam`), circular evaluation (:mod:`.circular`), review flags (:mod:`.flags`);
intervals are chosen in :mod:`.estimate`. The SQL lives in :mod:`medsafe.store.aggregates`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsafe.results.judged import JudgedExtras, judged_blocks, judged_extras
from medsafe.results.models import (
    SCHEMA_VERSION,
    Circular,
    Estimate,
    Flags,
    GroupCounts,
    RunInfo,
    RunResults,
    ScorerResults,
    TurnMetric,
    TurnPoint,
)
from medsafe.scale import Scale
from medsafe.schema import RunSpec, ScorerSpec
from medsafe.store.aggregates import GroupRow
from medsafe.store.pg import store_path
from medsafe.store.sqlite import RunRecord, Store

__all__ = [
    "SCHEMA_VERSION",
    "Estimate",
    "Flags",
    "GroupCounts",
    "RunResults",
    "ScorerResults",
    "TurnMetric",
    "TurnPoint",
    "compute_results",
    "load_results",
    "results_and_groups",
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


@dataclass(frozen=True)
class _Side:
    """The blocks computed beside the scorer blocks (other tables, or per-unit reads)."""

    groups: list[GroupRow]
    circular: Circular | None
    judged: JudgedExtras
    flags: Flags


def _side_blocks(
    conn: sqlite3.Connection,
    run_id: str,
    keys: set[tuple[str, str]],
    scales: dict[str, Scale],
    specs: dict[str, ScorerSpec],
    tests: bool,
) -> _Side:
    """Item groups, judge agreement and quality, circular evaluation and the review flags."""
    from medsafe.results.circular import circular_block
    from medsafe.results.flags import flags_block
    from medsafe.store import aggregates as sql

    rows = sql.group_rows(conn, run_id)
    judged = judged_extras(conn, run_id, keys, scales, specs, tests=tests)
    flags = flags_block(conn, run_id)
    return _Side(rows, circular_block(conn, run_id), judged, flags)


def _dialogue_blocks(
    conn: sqlite3.Connection, run_id: str, scales: dict[str, Scale], tests: bool
) -> dict[str, Any]:
    """The red-team fields ({} without dialogues: then no numpy or dialogue statistics)."""
    from medsafe.store import aggregates as sql

    if not sql.has_kind(conn, run_id, "dialogue"):
        return {}
    from medsafe.results.redteam import redteam_blocks

    return redteam_blocks(conn, run_id, scales, tests=tests)


def _beside(
    conn: sqlite3.Connection,
    run_id: str,
    keys: set[tuple[str, str]],
    scales: dict[str, Scale],
    specs: dict[str, ScorerSpec],
    tests: bool,
) -> tuple[_Side, dict[str, Any]]:
    """Everything but the scorer blocks (one worker: a third thread only adds GIL contention)."""
    return (
        _side_blocks(conn, run_id, keys, scales, specs, tests),
        _dialogue_blocks(conn, run_id, scales, tests),
    )


def _with_imaging(
    conn: sqlite3.Connection, run_id: str, blocks: dict[str, ScorerResults]
) -> dict[str, ScorerResults]:
    """Detection and classification figures (docs/imaging.md) on their scorers' blocks."""
    if not any(n.split(":", 1)[0] in ("detection", "classification") for n in blocks):
        return blocks
    from medsafe.results.classification import with_classification
    from medsafe.results.detection import with_detection

    return with_classification(conn, run_id, with_detection(conn, run_id, blocks))


def compute_results(conn: sqlite3.Connection, record: RunRecord) -> RunResults:
    """Every aggregate of one run, from its store connection."""
    return results_and_groups(conn, record)[0]


def results_and_groups(
    conn: sqlite3.Connection, record: RunRecord, *, tests: bool = True
) -> tuple[RunResults, list[GroupRow]]:
    """The run's results and the item groups (category, language, kind) they were counted
    from, for a caller that shows item counts beside them (the report).

    ``tests=False`` leaves out the figures that need scipy's and scikit-learn's tests and
    that no report section shows yet: judge agreement (kappa, alpha, Spearman) and the
    red-team decline, cross-lingual and per-turn judge-agreement tests (they stay None or
    empty). Every other figure is the same as with ``tests=True``.
    """
    from medsafe.results.calibration import with_calibrations
    from medsafe.results.counts import group_counts
    from medsafe.results.scores import scorer_blocks
    from medsafe.store import aggregates as sql

    run_id = record.run_id
    keys = sql.score_keys(conn, run_id)
    scales = run_scales(record.spec, {scorer for scorer, _judge in keys})
    specs = {s.name: s for s in record.spec.scorers}
    # Everything but the scorer blocks runs in a worker thread on a connection of its own:
    # SQLite releases the GIL while it scans, so the two halves overlap on two cores.
    reader = sql.second_reader(conn)
    if reader is None:
        side, dialogue = _beside(conn, run_id, keys, scales, specs, tests)
        blocks = scorer_blocks(conn, run_id, scales)
    else:
        with reader, ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(_beside, reader, run_id, keys, scales, specs, tests)
            try:
                blocks = scorer_blocks(conn, run_id, scales)
            finally:
                wait([future])  # its connection closes only after the worker is done
            side, dialogue = future.result()
        reader.close()
    blocks = with_calibrations(conn, run_id, judged_blocks(blocks, side.judged, specs))
    blocks = _with_imaging(conn, run_id, blocks)
    total, by_category, by_language = group_counts(side.groups)
    results = RunResults(
        run_id=run_id,
        model=record.spec.model,
        run=RunInfo(run_id=run_id, created=record.created, spec=record.spec),
        **total.model_dump(exclude={"mcq"}),
        mcq=total.mcq,
        by_category=by_category,
        by_language=by_language,
        scorers=blocks,
        circular=side.circular,
        flags=side.flags,
        **dialogue,
    )
    return results, side.groups


def load_results(db: str | os.PathLike[str], run_id: str) -> RunResults:
    """The results of run ``run_id`` in the store ``db`` (which must exist)."""
    path = store_path(db if isinstance(db, str) else Path(db))
    if not path.is_file():
        from medsafe.errors import StoreError

        raise StoreError(f"{path}: no such store")
    with Store(path) as store:
        return compute_results(store.connection, store.require_run(run_id))
