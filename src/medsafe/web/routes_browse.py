"""Browsing: the runs list, one run, its items (filtered, paged), one item's full transcript,
and two runs compared. Read by admins, viewers, auditors and adjudicators; reviewers do not
browse, so that nothing shows them a model, a run or a judge's score before they label."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from medsafe.audit.signoffs import SignOffStatus, signoffs_for
from medsafe.errors import MedsafeError
from medsafe.results import RunResults
from medsafe.store import queries, webstore
from medsafe.store.lease import live_runs
from medsafe.store.sqlite import Store
from medsafe.web import views
from medsafe.web.auth import User
from medsafe.web.deps import Conn, require_roles, store_path
from medsafe.web.results_cache import (
    latest_results,
    refresh_in_background,
    results_for,
    summaries,
)
from medsafe.web.templating import render

router = APIRouter()

BROWSE_ROLES = ("admin", "viewer", "auditor", "adjudicator")
Browser = Annotated[User, Depends(require_roles(*BROWSE_ROLES))]
PAGE = 50
QUICK = 20_000
"""The runs list computes the results of at most 5 runs of up to this many items while it
answers; larger ones show as being computed (the server computes them in the background)."""


def _results(request: Request, run_id: str) -> RunResults:
    try:
        return results_for(store_path(request), run_id)
    except MedsafeError as exc:
        raise HTTPException(404, str(exc)) from None


def _signoffs(conn: sqlite3.Connection, run_id: str) -> list[SignOffStatus]:
    """The run's sign-offs, each marked stale when the run changed since."""
    return signoffs_for(conn, run_id)


@dataclass(frozen=True)
class RunListRow:
    """One row of the runs list."""

    run: webstore.RunRow
    status: str
    headline: dict[str, Any] | None
    signoffs: list[SignOffStatus]


def _run_list(
    conn: Conn, model: str, suite: str, since: str, until: str, page: int
) -> tuple[list[RunListRow], int]:
    rows, total = webstore.run_rows(
        conn, model=model, suite=suite, since=since, until=until, limit=PAGE,
        offset=(page - 1) * PAGE,
    )  # fmt: skip
    ids = [r.run_id for r in rows]
    found_all = summaries(conn, ids)
    live = live_runs(conn)
    out = []
    for row in rows:
        found = found_all.get(row.run_id)
        status = (
            views.run_status(found.n, found.ok, found.failed, row.run_id in live)
            if found
            else "not computed"
        )
        out.append(
            RunListRow(
                row,
                status,
                views.headline(found) if found else None,
                _signoffs(conn, row.run_id),
            )
        )
    return out, total


@router.get("/runs")
def runs_page(
    request: Request,
    user: Browser,
    conn: Conn,
    model: str = "",
    suite: str = "",
    since: str = "",
    until: str = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    """Every run, newest first, filtered by model, suite and date, with headline figures."""
    rows, total = _run_list(conn, model, suite, since, until, page)
    missing = [r.run for r in rows if r.headline is None]
    small = [r.run_id for r in missing if r.n_items <= QUICK]
    for run in missing:
        if run.n_items > QUICK:  # computed in the background; shown as being computed
            refresh_in_background(store_path(request), run.run_id)
    for run_id in small[:5]:  # a few small ones now; the server's warm-up does the rest
        try:
            results_for(store_path(request), run_id)
        except MedsafeError:
            continue
    if small:
        rows, total = _run_list(conn, model, suite, since, until, page)
    return render(
        request,
        "runs.html",
        {
            "rows": rows,
            "total": total,
            "page": page,
            "pages": max(1, math.ceil(total / PAGE)),
            "filters": {"model": model, "suite": suite, "since": since, "until": until},
        },
    )


@router.get("/api/runs")
def runs_api(
    user: Browser, conn: Conn, model: str = "", suite: str = "", since: str = "", until: str = ""
) -> JSONResponse:
    """The runs list as JSON (first 50; figures only for runs already computed)."""
    rows, total = _run_list(conn, model, suite, since, until, 1)
    return JSONResponse(
        {
            "total": total,
            "runs": [
                {
                    "run_id": r.run.run_id,
                    "model": r.run.model,
                    "suite": r.run.suite,
                    "created": r.run.created,
                    "n": r.run.n_items,
                    "status": r.status,
                    "signoffs": [
                        {"decision": s.decision, "actor": s.actor, "stale": s.stale}
                        for s in r.signoffs
                    ],
                }
                for r in rows
            ],
        }
    )


@router.get("/run")
def run_page(
    request: Request,
    user: Browser,
    conn: Conn,
    id: str,
) -> Response:
    """One run: overview, metrics with intervals, categories, judges, red-team, flags (a
    large run's previous figures, marked as such, while its changed results are recomputed)."""
    try:
        results, stale = latest_results(store_path(request), id, wait_below=QUICK)
    except MedsafeError as exc:
        raise HTTPException(404, str(exc)) from None
    live = id in live_runs(conn)
    return render(
        request,
        "run.html",
        {
            "results": results,
            "spec": results.run.spec,
            "status": views.run_status(results.n, results.ok, results.failed, live),
            "view": views.run_overview(results),
            "signoffs": _signoffs(conn, id),
            "stale": stale,
        },
    )


@router.get("/api/run")
def run_api(request: Request, user: Browser, id: str) -> Response:
    """One run's RunResults as JSON (what ``medsafe results --json`` prints)."""
    return Response(_results(request, id).model_dump_json(), media_type="application/json")


def _float(text: str, name: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise HTTPException(400, f"{name}: not a number: {text!r}") from None
    if not math.isfinite(value):
        raise HTTPException(400, f"{name}: not a finite number")
    return value


@router.get("/run/items")
def items_page(
    request: Request,
    user: Browser,
    conn: Conn,
    id: str,
    category: str = "",
    language: str = "",
    flag: str = "",
    metric: str = "",
    label: str = "",
    min: str = "",
    max: str = "",
    q: str = "",
    after: Annotated[int, Query(ge=-1)] = -1,
    before: int | None = None,
) -> Response:
    """A run's items, filtered by category, language, flag, a metric's label or value range
    and free text; keyset-paged in suite order."""
    results = _results(request, id)
    scorer, _, judge = metric.partition(":")
    block = results.scorers.get(metric)
    item_filter = webstore.ItemFilter(
        category=category,
        language=language,
        flag=flag,
        scorer=scorer,
        judge=judge if ":" in metric else None,  # "scorer": any of its judges
        label=label,
        min_value=_float(min, "min"),
        max_value=_float(max, "max"),
        text=q.strip(),
    )
    rows = webstore.item_page(conn, id, item_filter, after=after, before=before, limit=PAGE + 1)
    more = len(rows) > PAGE
    rows = rows[-PAGE:] if before is not None else rows[:PAGE]
    form = {
        "id": id, "category": category, "language": language, "flag": flag,
        "metric": metric, "label": label, "min": min, "max": max, "q": q,
    }  # fmt: skip
    params = {k: v for k, v in form.items() if v}
    return render(
        request,
        "items.html",
        {
            "results": results,
            "rows": rows,
            "params": params,
            "form": form,
            "has_next": more if before is None else True,
            "has_prev": (after >= 0) if before is None else more,
            "metrics": sorted(k for k in results.scorers),
            "labels": sorted(block.labels) if block is not None else [],
            "lang_names": sorted(results.by_language),
            "categories": sorted(results.by_category),
            "flags": sorted(results.flags.counts),
        },
    )


@router.get("/item")
def transcript_page(
    request: Request,
    user: Browser,
    run: str,
    id: str,
) -> Response:
    """One item's full transcript: every turn, every score with its judge, rationale and raw
    reply, and its flags with their details."""
    with Store(store_path(request)) as store:
        record = store.get_run(run)
        if record is None:
            raise HTTPException(404, f"no run {run!r}")
        pair = queries.item_and_transcript(store, run, id)
        item = pair[0] if pair else queries.find_item(store, run, id)
        if item is None:
            raise HTTPException(404, f"no item {id!r} in run {run!r}")
        transcript = pair[1] if pair else None
        scores = queries.item_scores(store, run, [id]).get(id, [])
        flags = queries.flag_details(store, run, id)
        turns = queries.dialogue_turns(store, run, id) if item.kind == "dialogue" else []
    return render(
        request,
        "transcript.html",
        {
            "run_id": run,
            "model": record.spec.model,
            "item": item,
            "transcript": transcript,
            "scores": scores,
            "flags": flags,
            "turns": turns,
        },
    )


@router.get("/compare")
def compare_page(
    request: Request,
    user: Browser,
    conn: Conn,
    a: str = "",
    b: str = "",
    metric: str = "",
) -> Response:
    """Run B against run A on one metric: paired test, delta with CI, per category."""
    runs, _total = webstore.run_rows(conn, limit=500)
    context: dict[str, Any] = {"runs": runs, "a": a, "b": b, "metric": metric}
    context.update({"comparison": None, "error": "", "metrics": []})
    if a and b:
        try:
            context.update(_compare(request, a, b, metric))
        except MedsafeError as exc:
            context["error"] = str(exc)
    return render(request, "compare.html", context)


def _compare(request: Request, a: str, b: str, metric: str) -> dict[str, Any]:
    from medsafe.report.compare import PairedConnection, compare_pairs
    from medsafe.report.compare import _default_metric as default_metric
    from medsafe.report.data import RunRef

    db = store_path(request)
    pair = (_results(request, a), _results(request, b))
    with PairedConnection(RunRef(a, db), RunRef(b, db), results=pair) as paired:
        shared = paired.shared()
        key = shared[metric] if metric in shared else default_metric(shared, pair[0])
        comparison = compare_pairs(
            paired.pairs(key),
            key,
            adjust="holm",
            run_a=a,
            run_b=b,
            estimates=paired.estimates(key),
        )
    return {
        "comparison": views.comparison_view(comparison, pair),
        "metrics": sorted(shared),
        "metric": key.name,
    }
