"""Each run's :class:`~medsafe.results.RunResults`, materialised in the store.

A run's results are computed once by :func:`medsafe.results.compute_results` and kept in
``web_results`` under a fingerprint: the run's change counter (bumped by triggers on every
insert, update or delete of its items, transcripts, scores, flags, dialogue turns or spec;
see :mod:`medsafe.store.schema_web`), medsafe's version and the results schema version. A page
reads the stored JSON when the fingerprint still matches, which costs one primary-key read,
and recomputes it otherwise. A full content hash would also notice every change, but it reads
every row of the run on every page view (seconds at 200,000 items), which is what the cache
is there to avoid.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from medsafe._version import __version__
from medsafe.results import SCHEMA_VERSION, Estimate, RunResults, compute_results
from medsafe.store import webstore
from medsafe.store.sqlite import Store

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def fingerprint(version: int) -> str:
    """The cache key of a run at change counter ``version``."""
    return f"v{version}/medsafe-{__version__}/results-{SCHEMA_VERSION}"


def _lock(run_id: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(run_id, threading.Lock())


class RunSummary(BaseModel):
    """What the runs list shows of a run, kept beside its results (reading 50 runs' full
    results would cost a second): counts, MCQ accuracy and the headline metric."""

    model_config = ConfigDict(frozen=True)

    n: int
    ok: int
    failed: int
    mcq: Estimate | None
    metric: str
    """The headline metric's title ('' when the run has none)."""
    headline: Estimate | None
    percent: bool
    """Whether the headline reads as a percentage (a share or a binary verdict)."""


def summary_of(results: RunResults) -> RunSummary:
    """The runs-list summary of ``results`` (the same estimates, not recomputed)."""
    from medsafe.report.data import metric_key
    from medsafe.report.render import metric_title
    from medsafe.report.text import headline_scorer

    head = headline_scorer(results)
    metric, estimate, percent = "", None, False
    if head is not None:
        block = head[1]
        metric, estimate = metric_title(metric_key(block)), block.estimate
        binary = block.scale.kind == "binary" and not block.per_turn
        percent = block.scale.is_share or binary
    return RunSummary(
        n=results.n,
        ok=results.ok,
        failed=results.failed,
        mcq=results.mcq if results.mcq_answered else None,
        metric=metric,
        headline=estimate,
        percent=percent,
    )


def summaries(conn: sqlite3.Connection, run_ids: list[str]) -> dict[str, RunSummary]:
    """The summaries of those of ``run_ids`` whose materialised results are current (others
    are left out: the list shows them as being computed rather than wait)."""
    versions = webstore.run_versions(conn, run_ids)
    out: dict[str, RunSummary] = {}
    for run_id, (key, blob) in webstore.cached_summaries(conn, run_ids).items():
        if key == fingerprint(versions[run_id]):
            out[run_id] = RunSummary.model_validate_json(blob)
    return out


def results_for(db: Path, run_id: str) -> RunResults:
    """The current results of ``run_id`` (StoreError if there is no such run): the
    materialised copy when current, else computed now and stored (one computation per run
    at a time; a second request waits for it)."""
    with Store(db) as store:
        conn = store.connection
        key = fingerprint(webstore.run_version(conn, run_id))
        found = webstore.cached_results(conn, run_id)
        if found is not None and found[0] == key:
            return RunResults.model_validate_json(found[1])
        with _lock(run_id):
            key = fingerprint(webstore.run_version(conn, run_id))
            found = webstore.cached_results(conn, run_id)
            if found is not None and found[0] == key:
                return RunResults.model_validate_json(found[1])
            record = store.require_run(run_id)
            results = compute_results(conn, record)
            # stored under the key read before computing: a change meanwhile bumps the
            # counter, so the copy is recomputed on the next view rather than served stale
            webstore.store_results(
                conn,
                run_id,
                key,
                results.model_dump_json(),
                summary_of(results).model_dump_json(),
                time.time(),
            )
            return results


_REFRESHING: dict[str, threading.Thread] = {}


def refresh_in_background(db: Path, run_id: str) -> threading.Thread:
    """Recompute ``run_id``'s results in a daemon thread (the one already running, if any)."""
    with _LOCKS_GUARD:
        running = _REFRESHING.get(run_id)
        if running is not None and running.is_alive():
            return running

        def work() -> None:
            try:
                results_for(db, run_id)
            except Exception:  # the next view computes it again and shows why
                return

        thread = threading.Thread(target=work, name=f"medsafe-results-{run_id}", daemon=True)
        _REFRESHING[run_id] = thread
        thread.start()
        return thread


def latest_results(db: Path, run_id: str, *, wait_below: int) -> tuple[RunResults, bool]:
    """The run's results for a page, and whether they are stale.

    Current results, computed now if needed, for a run of up to ``wait_below`` items or one
    never computed. For a larger run whose copy is stale (a review is storing human labels
    in it, a rescore is running), the last computed results come back at once with ``True``
    while a background thread recomputes them: the page says so rather than make every
    view wait for a recomputation of seconds.
    """
    with Store(db) as store:
        conn = store.connection
        key = fingerprint(webstore.run_version(conn, run_id))
        found = webstore.cached_results(conn, run_id)
        record = store.get_run(run_id)
    if found is not None and found[0] == key:
        return RunResults.model_validate_json(found[1]), False
    if found is None or record is None or record.n_items <= wait_below:
        return results_for(db, run_id), False
    refresh_in_background(db, run_id)
    return RunResults.model_validate_json(found[1]), True


def warm_all(db: Path, stop: threading.Event) -> None:
    """Compute the results of every run whose copy is missing or stale, newest first, until
    ``stop`` is set (the server's start-up warms its cache this way)."""
    with Store(db) as store:
        rows, _total = webstore.run_rows(store.connection, limit=10_000)
    for row in rows:
        if stop.is_set():
            return
        try:
            results_for(db, row.run_id)
        except Exception:
            continue
