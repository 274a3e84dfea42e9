"""The review pages: task list, new task (admin), a task's progress and agreement, blinded
labelling (reviewers), adjudication (adjudicators), sign-off (auditors), review-file and label
exports. Every rule is checked here on the server, whatever a page shows: a reviewer's unit
page carries no run, model, score or other reviewer's label before she has submitted hers.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from medsafe.errors import MedsafeError
from medsafe.review.model import BUILTIN_RUBRICS, LabelSchema, TaskSpec, schema_from_scale
from medsafe.review.tasks import (
    ReviewError,
    UnitView,
    adjudicate,
    adjudication_queue,
    assigned_units,
    create_task,
    get_task,
    is_final,
    labelled_by,
    labels_of,
    list_tasks,
    progress,
    submit_label,
    unit_ids,
    unit_view,
)
from medsafe.web.auth import User
from medsafe.web.deps import Conn, require_roles, verify_csrf
from medsafe.web.templating import render

router = APIRouter()

Admin = Annotated[User, Depends(require_roles("admin"))]
Reviewer = Annotated[User, Depends(require_roles("reviewer"))]
Adjudicator = Annotated[User, Depends(require_roles("adjudicator"))]
Auditor = Annotated[User, Depends(require_roles("auditor"))]
Anyone = Annotated[User, Depends(require_roles("admin", "reviewer", "adjudicator", "auditor"))]
CSRF = [Depends(verify_csrf)]
SAMPLES = ("flagged", "guardian:unsafe,unusable,uncertain", "stratified:20", "ids:")


def _task(conn: sqlite3.Connection, task_id: str) -> TaskSpec:
    try:
        return get_task(conn, task_id)
    except ReviewError:
        raise HTTPException(404, "no such task") from None


def _unit_at(conn: sqlite3.Connection, task: TaskSpec, position: int) -> str:
    units = unit_ids(conn, task.task_id)
    if not 1 <= position <= len(units):
        raise HTTPException(404, "no such unit")
    return units[position - 1]


def _view(conn: sqlite3.Connection, task: TaskSpec, item_id: str) -> UnitView:
    """The blinded view of a unit; 404 when its run no longer holds it (deleted)."""
    try:
        return unit_view(conn, task, item_id)
    except ReviewError:
        raise HTTPException(404, "this unit's answer is no longer in the store") from None


def _form_values(form: Any, schema: LabelSchema) -> dict[str, str]:
    return {f.name: str(form.get(f"field.{f.name}", "")) for f in schema.fields}


def _blocked(request: Request, message: str, status: int = 409) -> Response:
    return render(request, "review_message.html", {"message": message}, status_code=status)


# -- lists and task creation ----------------------------------------------------------------


@router.get("/review")
def review_home(request: Request, conn: Conn, user: Anyone) -> Response:
    """The tasks this user works on: hers to label, to adjudicate, to oversee."""
    tasks = list_tasks(conn)
    mine = []
    for row in tasks:
        units = assigned_units(conn, row.spec.task_id, user.username)
        if units and user.has("reviewer"):
            done = labelled_by(conn, row.spec.task_id, user.username)
            mine.append(
                {
                    "task_id": row.spec.task_id,
                    "assigned": len(units),
                    "done": sum(u in done for u in units),
                }
            )
    queues = []
    if user.has("adjudicator"):
        for row in tasks:
            waiting = [
                u
                for u in adjudication_queue(conn, row.spec)
                if user.username not in {lab.by for lab in labels_of(conn, row.spec.task_id, u)}
            ]
            if waiting:
                queues.append({"task_id": row.spec.task_id, "waiting": len(waiting)})
    overview = tasks if user.has("admin", "auditor", "adjudicator") else []
    runs = sorted({row.spec.run_id for row in overview})
    return render(
        request,
        "review_home.html",
        {"mine": mine, "queues": queues, "tasks": overview, "runs": runs},
    )


@router.get("/review/new")
def new_task_form(request: Request, conn: Conn, user: Admin) -> Response:
    """The form an admin creates a task with."""
    from medsafe.store.accounts import list_users

    reviewers = [u.username for u in list_users(conn) if "reviewer" in u.roles and not u.disabled]
    return render(
        request,
        "review_new.html",
        {
            "scorers": _run_scales(conn),
            "samples": SAMPLES,
            "reviewers": reviewers,
            "rubrics": sorted(BUILTIN_RUBRICS),
            "error": "",
        },
    )


def _run_scales(conn: sqlite3.Connection) -> dict[str, list[str]]:
    from medsafe.results import run_scales
    from medsafe.schema import RunSpec

    out: dict[str, list[str]] = {}
    for (spec_json,) in conn.execute("SELECT spec_json FROM runs ORDER BY created DESC LIMIT 200"):
        spec = RunSpec.model_validate_json(spec_json)
        scales = run_scales(spec, {s.name for s in spec.scorers} | {"guardian"})
        out[spec.run_id] = sorted(n for n, s in scales.items() if s.labels or s.levels)
    return out


def _reviewers(conn: sqlite3.Connection, names: list[str]) -> list[str]:
    """``names`` if each is an enabled account holding the reviewer role."""
    from medsafe.store.accounts import list_users

    allowed = {u.username for u in list_users(conn) if "reviewer" in u.roles and not u.disabled}
    wrong = [n for n in names if n not in allowed]
    if wrong:
        raise ReviewError(f"not an enabled reviewer account: {', '.join(wrong)}")
    return names


@router.post("/review/new", dependencies=CSRF)
async def new_task(request: Request, conn: Conn, user: Admin) -> Response:
    """Create the task and show it."""
    form = await request.form()
    return await run_in_threadpool(_new_task, request, conn, user, form)


def _new_task(request: Request, conn: sqlite3.Connection, user: User, form: FormData) -> Response:
    from medsafe.results import run_scales
    from medsafe.schema import RunSpec

    run_id = str(form.get("run_id", ""))
    labels = str(form.get("labels", ""))
    try:
        row = conn.execute("SELECT spec_json FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            raise ReviewError(f"no run {run_id!r}")
        if labels.startswith("rubric:"):
            schema = BUILTIN_RUBRICS[labels.removeprefix("rubric:")]
        else:
            scales = run_scales(RunSpec.model_validate_json(row[0]), {labels})
            if labels not in scales:
                raise ReviewError(f"run {run_id} has no scale {labels!r}")
            schema = schema_from_scale(labels, scales[labels])
        task = create_task(
            conn,
            run_id=run_id,
            sample=str(form.get("sample", "")),
            schema=schema,
            reviewers=_reviewers(conn, [str(r) for r in form.getlist("reviewers")]),
            actor=user.username,
            k=int(str(form.get("k", "2")) or 2),
            seed=int(str(form.get("seed", "0")) or 0),
            margin=float(str(form.get("margin", "0")) or 0),
        )
    except (MedsafeError, ValueError, KeyError) as exc:
        return _blocked(request, str(exc), 400)
    return RedirectResponse(f"/review/task/{task.task_id}", status_code=303)


# -- a task's overview ----------------------------------------------------------------------


_AGREEMENT: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
"""Agreement of recently shown tasks, keyed by (store, task, digest of its labels): the page
and its 15 s poll recompute the bootstrap only when a label changed."""
_AGREEMENT_SIZE = 32


def _agreement(conn: sqlite3.Connection, task: TaskSpec) -> Any:
    from medsafe.review.agreement import task_agreement

    digest = hashlib.sha256()
    for row in labels_of(conn, task.task_id):
        digest.update(json.dumps([row.item_id, row.by, row.values]).encode())
    store = str(conn.execute("PRAGMA database_list").fetchone()[2])
    key = (store, task.task_id, digest.hexdigest())
    if key not in _AGREEMENT:
        _AGREEMENT[key] = task_agreement(conn, task, n_resamples=500)
        while len(_AGREEMENT) > _AGREEMENT_SIZE:
            _AGREEMENT.popitem(last=False)
    _AGREEMENT.move_to_end(key)
    return _AGREEMENT[key]


def _overview(conn: sqlite3.Connection, task: TaskSpec) -> dict[str, Any]:
    queue = adjudication_queue(conn, task)
    positions = {u: n for n, u in enumerate(unit_ids(conn, task.task_id), start=1)}
    return {
        "task": task,
        "progress": progress(conn, task),
        "agreement": _agreement(conn, task),
        "queue": [(positions[u], u) for u in queue],
    }


def _may_oversee(conn: sqlite3.Connection, user: User, task_id: str) -> Response | None:
    """None when ``user`` may see the task's overview, else where to send her: a reviewer
    with units left to label (or holding no other role) gets her own list."""
    units = assigned_units(conn, task_id, user.username)
    done = labelled_by(conn, task_id, user.username)
    if not user.has("admin", "adjudicator", "auditor") or any(u not in done for u in units):
        if not units:
            raise HTTPException(403, "your role does not allow this page")
        return RedirectResponse(f"/review/task/{task_id}/mine", status_code=303)
    return None


@router.get("/review/task/{task_id}")
def task_page(request: Request, conn: Conn, user: Anyone, task_id: str) -> Response:
    """Progress, per-reviewer counts, agreement with CIs and the adjudication queue."""
    task = _task(conn, task_id)
    return _may_oversee(conn, user, task_id) or render(
        request, "review_task.html", _overview(conn, task)
    )


@router.get("/review/task/{task_id}/live")
def task_live(request: Request, conn: Conn, user: Anyone, task_id: str) -> Response:
    """The live part of the task page (htmx polls it)."""
    task = _task(conn, task_id)
    return _may_oversee(conn, user, task_id) or render(
        request, "review_task_live.html", _overview(conn, task)
    )


@router.get("/review/task/{task_id}/export")
def export_task(conn: Conn, user: Admin, task_id: str) -> Response:
    """The task's review file (JSONL, medsafe-review/1)."""
    from medsafe.review.files import export_lines

    _task(conn, task_id)
    body = "".join(
        json.dumps(o, ensure_ascii=False, sort_keys=True) + "\n"
        for o in export_lines(conn, task_id)
    )
    return Response(
        body,
        media_type="application/jsonl; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{task_id}.jsonl"'},
    )


@router.get("/review/task/{task_id}/labels.jsonl")
def export_labels(conn: Conn, user: Admin, task_id: str) -> Response:
    """The final labels in ``medsafe calibrate --labels`` format."""
    from medsafe.review.exports import calibrate_rows

    _task(conn, task_id)
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in calibrate_rows(conn, task_id))
    return Response(
        body,
        media_type="application/jsonl; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{task_id}-labels.jsonl"'},
    )


# -- labelling (blinded) --------------------------------------------------------------------


@router.get("/review/task/{task_id}/mine")
def my_units(request: Request, conn: Conn, user: Reviewer, task_id: str) -> Response:
    """The reviewer's units of a task (positions only) and which she has labelled."""
    task = _task(conn, task_id)
    units = assigned_units(conn, task_id, user.username)
    if not units:
        raise HTTPException(403, "no unit of this task is assigned to you")
    done = labelled_by(conn, task_id, user.username)
    positions = {u: n for n, u in enumerate(unit_ids(conn, task_id), start=1)}
    rows = [(positions[u], u in done) for u in units]
    return render(request, "review_mine.html", {"task": task, "rows": rows})


def _neighbours(
    conn: sqlite3.Connection, task_id: str, user: User, item_id: str
) -> tuple[int | None, int | None]:
    units = assigned_units(conn, task_id, user.username)
    positions = {u: n for n, u in enumerate(unit_ids(conn, task_id), start=1)}
    at = units.index(item_id)
    prev = positions[units[at - 1]] if at > 0 else None
    nxt = positions[units[at + 1]] if at + 1 < len(units) else None
    return prev, nxt


@router.get("/review/task/{task_id}/unit/{position}")
def unit_page(
    request: Request, conn: Conn, user: Reviewer, task_id: str, position: int
) -> Response:
    """One unit to label: the conversation only; after her label, the others' and the judges'."""
    task = _task(conn, task_id)
    item_id = _unit_at(conn, task, position)
    if item_id not in assigned_units(conn, task_id, user.username):
        raise HTTPException(403, "this unit is not assigned to you")
    view = _view(conn, task, item_id)
    labels = labels_of(conn, task_id, item_id)
    own = next((lab for lab in labels if lab.by == user.username), None)
    others = [lab for lab in labels if lab.by != user.username] if own is not None else []
    judges: list[dict[str, Any]] = []
    if own is not None:
        from medsafe.store.queries import item_scores
        from medsafe.store.sqlite import Store
        from medsafe.web.deps import store_path

        with Store(store_path(request)) as store:
            judges = [
                s.__dict__
                for s in item_scores(store, task.run_id, [item_id]).get(item_id, [])
                if s.judge != "human"
            ]
    prev, nxt = _neighbours(conn, task_id, user, item_id)
    final = is_final(conn, task_id, item_id)
    return render(
        request,
        "review_unit.html",
        {
            "task": task,
            "view": view,
            "own": own,
            "others": others,
            "judges": judges,
            "prev": prev,
            "next": nxt,
            "final": final,
            "error": "",
        },
    )


@router.post("/review/task/{task_id}/unit/{position}", dependencies=CSRF)
async def submit_unit(
    request: Request, conn: Conn, user: Reviewer, task_id: str, position: int
) -> Response:
    """Store her label; go on to her next unlabelled unit."""
    form = await request.form()
    return await run_in_threadpool(_submit_unit, request, conn, user, task_id, position, form)


def _store(
    request: Request,
    conn: sqlite3.Connection,
    user: User,
    task: TaskSpec,
    position: int,
    form: FormData,
    action: Callable[[sqlite3.Connection, str, str, str, dict[str, str], str], Any],
) -> Response | None:
    """Store the form's label (a reviewer's or an adjudicator's) for the unit at ``position``;
    the page saying why when the review rules refuse it, else None."""
    item_id = _unit_at(conn, task, position)
    try:
        action(
            conn,
            task.task_id,
            item_id,
            user.username,
            _form_values(form, task.label_schema),
            str(form.get("rationale", "")),
        )
    except ReviewError as exc:
        return _blocked(request, str(exc))
    return None


def _submit_unit(
    request: Request,
    conn: sqlite3.Connection,
    user: User,
    task_id: str,
    position: int,
    form: FormData,
) -> Response:
    task = _task(conn, task_id)
    blocked = _store(request, conn, user, task, position, form, submit_label)
    if blocked is not None:
        return blocked
    units = assigned_units(conn, task_id, user.username)
    done = labelled_by(conn, task_id, user.username)
    positions = {u: n for n, u in enumerate(unit_ids(conn, task_id), start=1)}
    after = [u for u in units if u not in done and positions[u] > position]
    todo = after or [u for u in units if u not in done]
    target = (
        f"/review/task/{task_id}/unit/{positions[todo[0]]}"
        if todo
        else f"/review/task/{task_id}/mine"
    )
    return RedirectResponse(target, status_code=303)


# -- adjudication ---------------------------------------------------------------------------


@router.get("/review/task/{task_id}/adjudicate/{position}")
def adjudicate_page(
    request: Request, conn: Conn, user: Adjudicator, task_id: str, position: int
) -> Response:
    """A unit the reviewers disagree on, with their labels and rationales."""
    task = _task(conn, task_id)
    item_id = _unit_at(conn, task, position)
    labels = labels_of(conn, task_id, item_id)
    if user.username in {lab.by for lab in labels}:
        return _blocked(
            request, f"{user.username} labelled this unit: she cannot adjudicate it", 403
        )
    if item_id not in adjudication_queue(conn, task):
        return _blocked(request, "this unit is not waiting for adjudication")
    return render(
        request,
        "review_adjudicate.html",
        {"task": task, "view": _view(conn, task, item_id), "labels": labels},
    )


@router.post("/review/task/{task_id}/adjudicate/{position}", dependencies=CSRF)
async def adjudicate_unit(
    request: Request, conn: Conn, user: Adjudicator, task_id: str, position: int
) -> Response:
    """Store the decision; go on to the next unit in the queue."""
    form = await request.form()
    return await run_in_threadpool(_adjudicate_unit, request, conn, user, task_id, position, form)


def _adjudicate_unit(
    request: Request,
    conn: sqlite3.Connection,
    user: User,
    task_id: str,
    position: int,
    form: FormData,
) -> Response:
    task = _task(conn, task_id)
    blocked = _store(request, conn, user, task, position, form, adjudicate)
    if blocked is not None:
        return blocked
    positions = {u: n for n, u in enumerate(unit_ids(conn, task_id), start=1)}
    mine = [
        u
        for u in adjudication_queue(conn, task)
        if user.username not in {lab.by for lab in labels_of(conn, task_id, u)}
    ]
    target = f"/review/task/{task_id}/adjudicate/{positions[mine[0]]}" if mine else "/review"
    return RedirectResponse(target, status_code=303)


# -- sign-off -------------------------------------------------------------------------------


@router.get("/review/signoff/{run_id:path}")
def signoff_page(request: Request, conn: Conn, user: Auditor, run_id: str) -> Response:
    """The run's review tasks, what blocks a sign-off, and its sign-offs (stale ones marked)."""
    from medsafe.review.signoff import signoff_state

    if conn.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone() is None:
        raise HTTPException(404, "no such run")
    state = signoff_state(conn, run_id)
    return render(
        request,
        "review_signoff.html",
        {
            "run_id": run_id,
            "state": state,
            "tasks": list_tasks(conn, run_id),
            "blocker": state.blocker(user.username),
        },
    )


@router.post("/review/signoff/{run_id:path}", dependencies=CSRF)
async def signoff_submit(request: Request, conn: Conn, user: Auditor, run_id: str) -> Response:
    """Record the auditor's decision (preconditions checked in the same transaction)."""
    form = await request.form()
    return await run_in_threadpool(_signoff_submit, request, conn, user, run_id, form)


def _signoff_submit(
    request: Request, conn: sqlite3.Connection, user: User, run_id: str, form: FormData
) -> Response:
    from medsafe.review.signoff import sign_off

    decision = str(form.get("decision", ""))
    if decision not in ("approve", "reject"):
        return _blocked(request, "decision: approve or reject", 400)
    try:
        sign_off(
            conn,
            run_id,
            user.username,
            "approve" if decision == "approve" else "reject",
            str(form.get("comment", "")),
            str(form.get("conditions", "")),
        )
    except MedsafeError as exc:
        return _blocked(request, str(exc))
    return RedirectResponse(f"/review/signoff/{run_id}", status_code=303)
