"""Review tasks: creation, balanced assignment, blinded units, labels, disagreement,
adjudication and the final label stored in the run as a score by the judge ``human``.

Every change runs in one ``BEGIN IMMEDIATE`` transaction with its audit entry
(:func:`medsafe.audit.chain.append`): a label without its entry, or the reverse, is never
stored. Protocol (docs/review.md):

- k reviewers per unit, assigned so that every reviewer gets as even a share as possible;
- a reviewer sees only the unit's conversation (no run, model, scores or other labels) until
  she has submitted; she may change her label until the unit is final;
- once all k labels are in, a unit whose labels agree (categorical fields equal, ordinal fields
  within the task's margin) is final: the median (ties to the less safe value) of each field;
  otherwise it goes to an adjudicator who did not label it, whose decision is final;
- a final label is written to the run as ``Score(judge="human")`` with its provenance (task,
  who decided, when, the previous human value of that unit); the reviewers' own labels stay in
  the review tables. A task is complete when every unit is final.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from medsafe.audit.chain import append
from medsafe.errors import ConfigError, StoreError
from medsafe.results.judged import HUMAN as HUMAN
from medsafe.review.model import LabelSchema, TaskSpec
from medsafe.review.sampling import sample_units
from medsafe.schema import Message, Score, Transcript
from medsafe.store.schema_review import REVIEW_DDL
from medsafe.store.schema_sql import NO_TURN, statements

SCORER_VERSION = "review/1"


class ReviewError(ConfigError):
    """A review action that is not allowed (wrong person, wrong state, bad label)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def ensure_tables(conn: sqlite3.Connection) -> None:
    """Create the review tables if a store predates them (``CREATE ... IF NOT EXISTS``)."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='review_finals'"
    ).fetchone()
    if found is None:
        for statement in statements(REVIEW_DDL):
            conn.execute(statement)


@contextmanager
def _tx(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


# -- tasks ----------------------------------------------------------------------------------


def assign(units: Sequence[str], reviewers: Sequence[str], k: int) -> dict[str, list[str]]:
    """k distinct reviewers per unit, each unit to those with the fewest units so far (ties in
    a rotating order), so that loads differ by at most one."""
    if k > len(reviewers):
        raise ReviewError(f"k={k} reviewers per unit, but only {len(reviewers)} named")
    if len(set(reviewers)) != len(reviewers):
        raise ReviewError("a reviewer is named twice")
    load: Counter[str] = Counter({r: 0 for r in reviewers})
    out: dict[str, list[str]] = {}
    for n, unit in enumerate(units):
        order = sorted(
            reviewers, key=lambda r: (load[r], (reviewers.index(r) - n) % len(reviewers))
        )
        out[unit] = sorted(order[:k])
        for r in out[unit]:
            load[r] += 1
    return out


def create_task(
    conn: sqlite3.Connection,
    *,
    run_id: str,
    sample: str,
    schema: LabelSchema,
    reviewers: Sequence[str],
    actor: str,
    k: int = 2,
    seed: int = 0,
    margin: float = 0.0,
    required: bool = True,
    task_id: str | None = None,
) -> TaskSpec:
    """Sample the run's units, assign k reviewers each and store the task (audited)."""
    ensure_tables(conn)
    if conn.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone() is None:
        raise StoreError(f"no run {run_id!r}")
    units = sample_units(conn, run_id, sample, seed)
    plan = assign(units, list(reviewers), k)
    spec = TaskSpec(
        task_id=task_id or f"task-{secrets.token_hex(4)}",
        run_id=run_id,
        sample=sample,
        seed=seed,
        k=k,
        margin=margin,
        reviewers=tuple(reviewers),
        required=required,
        label_schema=schema,
    )
    with _tx(conn):
        _insert_task(conn, spec, units, plan, actor)
        append(
            conn,
            actor,
            "review.task.create",
            spec.task_id,
            {"run_id": run_id, "sample": sample, "seed": seed, "k": k, "n_units": len(units),
             "reviewers": list(reviewers), "schema": schema.name},
        )  # fmt: skip
    return spec


def _insert_task(
    conn: sqlite3.Connection,
    spec: TaskSpec,
    units: Sequence[str],
    plan: dict[str, list[str]],
    actor: str,
) -> None:
    if conn.execute("SELECT 1 FROM review_tasks WHERE task_id=?", (spec.task_id,)).fetchone():
        raise ReviewError(f"task {spec.task_id!r} exists already")
    conn.execute(
        "INSERT INTO review_tasks (task_id, run_id, spec, created_by, created, status) "
        "VALUES (?, ?, ?, ?, ?, 'open')",
        (spec.task_id, spec.run_id, spec.model_dump_json(), actor, _now()),
    )
    conn.executemany(
        "INSERT INTO review_units (task_id, item_id, position) VALUES (?, ?, ?)",
        [(spec.task_id, u, n + 1) for n, u in enumerate(units)],
    )
    conn.executemany(
        "INSERT INTO review_assignments (task_id, item_id, reviewer) VALUES (?, ?, ?)",
        [(spec.task_id, u, r) for u, rs in plan.items() for r in rs],
    )


def get_task(conn: sqlite3.Connection, task_id: str) -> TaskSpec:
    """The stored task; ReviewError listing a few known tasks when there is none."""
    ensure_tables(conn)
    row = conn.execute("SELECT spec FROM review_tasks WHERE task_id=?", (task_id,)).fetchone()
    if row is None:
        known = [r[0] for r in conn.execute("SELECT task_id FROM review_tasks LIMIT 10")]
        raise ReviewError(f"no review task {task_id!r} (tasks: {', '.join(known) or 'none'})")
    return TaskSpec.model_validate_json(row[0])


@dataclass(frozen=True)
class TaskRow:
    """A task in a list: its spec, creator, status and progress."""

    spec: TaskSpec
    created_by: str
    created: str
    status: str
    n_units: int
    n_final: int


def list_tasks(conn: sqlite3.Connection, run_id: str | None = None) -> list[TaskRow]:
    """Tasks (of one run, or all), newest first, with how many units are final."""
    ensure_tables(conn)
    sql = (
        "SELECT t.spec, t.created_by, t.created, t.status, "
        "(SELECT COUNT(*) FROM review_units u WHERE u.task_id=t.task_id) FROM review_tasks t"
    )
    args: tuple[Any, ...] = ()
    if run_id is not None:
        sql += " WHERE t.run_id=?"
        args = (run_id,)
    out = []
    for spec, by, created, status, n in conn.execute(sql + " ORDER BY t.created DESC", args):
        task = TaskSpec.model_validate_json(spec)
        out.append(TaskRow(task, by, created, status, int(n), n_final(conn, task.task_id)))
    return out


# -- units ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitView:
    """What a reviewer sees of one unit: its place in the task and the conversation, nothing
    about the run, the model, the scores or other reviewers' labels."""

    task_id: str
    item_id: str
    position: int
    total: int
    language: str
    messages: tuple[Message, ...]


def unit_ids(conn: sqlite3.Connection, task_id: str) -> list[str]:
    """The task's units in review order."""
    rows = conn.execute(
        "SELECT item_id FROM review_units WHERE task_id=? ORDER BY position", (task_id,)
    ).fetchall()
    return [str(r[0]) for r in rows]


def assigned_units(conn: sqlite3.Connection, task_id: str, reviewer: str) -> list[str]:
    """The units assigned to ``reviewer``, in review order."""
    rows = conn.execute(
        "SELECT a.item_id FROM review_assignments a JOIN review_units u ON u.task_id=a.task_id "
        "AND u.item_id=a.item_id WHERE a.task_id=? AND a.reviewer=? ORDER BY u.position",
        (task_id, reviewer),
    ).fetchall()
    return [str(r[0]) for r in rows]


def assignees(conn: sqlite3.Connection, task_id: str, item_id: str) -> list[str]:
    """The reviewers assigned to one unit."""
    rows = conn.execute(
        "SELECT reviewer FROM review_assignments WHERE task_id=? AND item_id=? ORDER BY reviewer",
        (task_id, item_id),
    ).fetchall()
    return [str(r[0]) for r in rows]


def unit_view(conn: sqlite3.Connection, task: TaskSpec, item_id: str) -> UnitView:
    """The blinded view of one unit."""
    row = conn.execute(
        "SELECT u.position, i.language, t.transcript_json FROM review_units u "
        "JOIN items i ON i.run_id=? AND i.item_id=u.item_id "
        "JOIN transcripts t ON t.run_id=i.run_id AND t.item_id=i.item_id "
        "WHERE u.task_id=? AND u.item_id=?",
        (task.run_id, task.task_id, item_id),
    ).fetchone()
    if row is None:
        raise ReviewError(f"task {task.task_id!r} has no unit {item_id!r}")
    total = conn.execute(
        "SELECT COUNT(*) FROM review_units WHERE task_id=?", (task.task_id,)
    ).fetchone()[0]
    transcript = Transcript.model_validate_json(row[2])
    messages = tuple(m for m in transcript.messages if m.role != "system")
    return UnitView(task.task_id, item_id, int(row[0]), int(total), str(row[1]), messages)


# -- labels ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    """One reviewer's (or an adjudicator's) label of one unit."""

    item_id: str
    by: str
    values: dict[str, str]
    rationale: str
    created: str


def labels_of(conn: sqlite3.Connection, task_id: str, item_id: str | None = None) -> list[Label]:
    """Reviewers' labels of the task (of one unit), by unit and reviewer."""
    sql = (
        'SELECT item_id, reviewer, "values", rationale, created FROM review_labels WHERE task_id=?'
    )
    args: tuple[Any, ...] = (task_id,)
    if item_id is not None:
        sql += " AND item_id=?"
        args = (task_id, item_id)
    rows = conn.execute(sql + " ORDER BY item_id, reviewer", args).fetchall()
    return [Label(str(i), str(r), json.loads(v), str(t), str(c)) for i, r, v, t, c in rows]


def adjudications_of(
    conn: sqlite3.Connection, task_id: str, item_id: str | None = None
) -> dict[str, Label]:
    """Adjudicated units of the task (or that one unit), by item id."""
    sql = (
        'SELECT item_id, adjudicator, "values", rationale, created FROM review_adjudications '
        "WHERE task_id=?"
    )
    args: tuple[Any, ...] = (task_id,)
    if item_id is not None:
        sql += " AND item_id=?"
        args = (task_id, item_id)
    rows = conn.execute(sql, args).fetchall()
    return {str(i): Label(str(i), str(a), json.loads(v), str(t), str(c)) for i, a, v, t, c in rows}


def labelled_by(conn: sqlite3.Connection, task_id: str, reviewer: str) -> set[str]:
    """The units ``reviewer`` has labelled."""
    rows = conn.execute(
        "SELECT item_id FROM review_labels WHERE task_id=? AND reviewer=?", (task_id, reviewer)
    ).fetchall()
    return {str(r[0]) for r in rows}


def _field_values(task: TaskSpec, labels: Sequence[Label], field: str) -> list[float | None]:
    f = task.label_schema.field(field)
    return [f.choice(lab.values[field]).value for lab in labels]


def disagree(task: TaskSpec, labels: Sequence[Label]) -> list[str]:
    """The fields on which ``labels`` disagree: categorical keys differ, or ordinal values lie
    further apart than the task's margin."""
    out = []
    for f in task.label_schema.fields:
        keys = {lab.values[f.name] for lab in labels}
        if f.kind == "ordinal":
            values = [v for v in _field_values(task, labels, f.name) if v is not None]
            if values and max(values) - min(values) > task.margin:
                out.append(f.name)
        elif len(keys) > 1:
            out.append(f.name)
    return out


def agreed_values(task: TaskSpec, labels: Sequence[Label]) -> dict[str, str]:
    """The agreed label of agreeing labels: each field's median (ties to the less safe)."""
    schema = task.label_schema
    out: dict[str, str] = {}
    for f in schema.fields:
        keys = [lab.values[f.name] for lab in labels]
        if f.kind != "ordinal":
            out[f.name] = keys[0]
            continue
        ranked = sorted(keys, key=lambda k: f.choice(k).value or 0.0)
        mid = len(ranked) // 2
        if len(ranked) % 2:
            out[f.name] = ranked[mid]
        else:
            low, high = ranked[mid - 1], ranked[mid]
            out[f.name] = low if schema.higher_is_safer else high
    return out


@dataclass(frozen=True)
class Final:
    """The final label of a unit: how it was reached and by whom."""

    item_id: str
    values: dict[str, str]
    how: str
    """``agreed`` or ``adjudicated``."""
    by: tuple[str, ...]
    created: str


def final_labels(conn: sqlite3.Connection, task: TaskSpec) -> dict[str, Final]:
    """The final label of every unit that has one."""
    rows = conn.execute(
        'SELECT item_id, "values", how, decided_by, created FROM review_finals WHERE task_id=?',
        (task.task_id,),
    ).fetchall()
    return {
        str(i): Final(str(i), json.loads(v), str(h), tuple(json.loads(by)), str(c))
        for i, v, h, by, c in rows
    }


def is_final(conn: sqlite3.Connection, task_id: str, item_id: str) -> bool:
    """Whether the unit has its final label."""
    row = conn.execute(
        "SELECT 1 FROM review_finals WHERE task_id=? AND item_id=?", (task_id, item_id)
    ).fetchone()
    return row is not None


def n_final(conn: sqlite3.Connection, task_id: str) -> int:
    """How many units of the task are final."""
    return int(
        conn.execute("SELECT COUNT(*) FROM review_finals WHERE task_id=?", (task_id,)).fetchone()[0]
    )


def _decide_unit(conn: sqlite3.Connection, task: TaskSpec, item_id: str) -> Final | None:
    """The unit's final label as its labels and adjudication make it now, or None."""
    adj = adjudications_of(conn, task.task_id, item_id).get(item_id)
    if adj is not None:
        return Final(item_id, adj.values, "adjudicated", (adj.by,), adj.created)
    labs = labels_of(conn, task.task_id, item_id)
    if len(labs) < task.k or disagree(task, labs):
        return None
    when = max(lab.created for lab in labs)
    return Final(item_id, agreed_values(task, labs), "agreed", tuple(lab.by for lab in labs), when)


def adjudication_queue(conn: sqlite3.Connection, task: TaskSpec) -> list[str]:
    """Units whose k labels are in and disagree (so not final), in review order."""
    rows = conn.execute(
        "SELECT u.item_id FROM review_units u WHERE u.task_id=? "
        "AND (SELECT COUNT(*) FROM review_labels l WHERE l.task_id=u.task_id "
        "AND l.item_id=u.item_id) >= ? AND NOT EXISTS (SELECT 1 FROM review_finals f "
        "WHERE f.task_id=u.task_id AND f.item_id=u.item_id) ORDER BY u.position",
        (task.task_id, task.k),
    ).fetchall()
    return [str(r[0]) for r in rows]


def _store_final(conn: sqlite3.Connection, task: TaskSpec, final: Final) -> None:
    """Write (or replace) the unit's human score, with its provenance."""
    schema = task.label_schema
    value, label = schema.score_of(final.values)
    previous = conn.execute(
        "SELECT value, label, json_extract(score_json, '$.extra.provenance.task') FROM scores "
        "WHERE run_id=? AND item_id=? AND scorer=? AND judge=? AND turn=?",
        (task.run_id, final.item_id, schema.scorer, HUMAN, NO_TURN),
    ).fetchone()
    rationales = [
        lab.rationale for lab in labels_of(conn, task.task_id, final.item_id) if lab.rationale
    ]
    adj = adjudications_of(conn, task.task_id, final.item_id).get(final.item_id)
    rationale = adj.rationale if adj is not None and adj.rationale else "\n".join(rationales)
    extra: dict[str, Any] = {
        "values": final.values,
        "provenance": {
            "task": task.task_id,
            "how": final.how,
            "by": list(final.by),
            "when": final.created,
            "previous": None
            if previous is None
            else {"value": previous[0], "label": previous[1], "task": previous[2]},
        },
    }
    score = Score(
        item_id=final.item_id,
        scorer=schema.scorer,
        scorer_version=SCORER_VERSION,
        judge=HUMAN,
        value=value,
        label=label,
        rationale=rationale or None,
        extra=extra,
    )
    conn.execute(
        "INSERT OR REPLACE INTO scores (run_id, item_id, scorer, judge, turn, value, label, "
        "status, error, score_json) VALUES (?, ?, ?, ?, ?, ?, ?, 'ok', NULL, ?)",
        (task.run_id, final.item_id, schema.scorer, HUMAN, NO_TURN, value, label,
         score.model_dump_json(exclude_defaults=True)),
    )  # fmt: skip


def _refresh(conn: sqlite3.Connection, task: TaskSpec, item_id: str, actor: str) -> None:
    """Make the unit final if it is now (stored, scored, audited); mark the task complete
    when every unit is."""
    final = _decide_unit(conn, task, item_id)
    if final is None:
        return
    conn.execute(
        'INSERT INTO review_finals (task_id, item_id, how, "values", decided_by, created) '
        "VALUES (?, ?, ?, ?, ?, ?)",
        (task.task_id, item_id, final.how, json.dumps(final.values, sort_keys=True),
         json.dumps(list(final.by)), final.created),
    )  # fmt: skip
    _store_final(conn, task, final)
    value, label = task.label_schema.score_of(final.values)
    append(
        conn,
        actor,
        "review.final",
        f"{task.task_id}/{item_id}",
        {"run_id": task.run_id, "scorer": task.label_schema.scorer, "judge": HUMAN,
         "how": final.how, "values": final.values, "value": value, "label": label},
    )  # fmt: skip
    units = conn.execute(
        "SELECT COUNT(*) FROM review_units WHERE task_id=?", (task.task_id,)
    ).fetchone()[0]
    finals = n_final(conn, task.task_id)
    if finals == units:
        conn.execute("UPDATE review_tasks SET status='complete' WHERE task_id=?", (task.task_id,))
        append(conn, actor, "review.task.complete", task.task_id, {"n_units": finals})


def submit_label(
    conn: sqlite3.Connection,
    task_id: str,
    item_id: str,
    reviewer: str,
    values: dict[str, str],
    rationale: str = "",
    *,
    created: str | None = None,
) -> Label:
    """Store ``reviewer``'s label of a unit assigned to her (replacing her earlier one while
    the unit is not final), audited; a unit that becomes final reaches the run."""
    task, checked = _checked(conn, task_id, item_id, values)
    with _tx(conn):
        if reviewer not in assignees(conn, task_id, item_id):
            raise ReviewError(f"unit {item_id!r} of task {task_id!r} is not assigned to {reviewer}")
        if is_final(conn, task_id, item_id):
            raise ReviewError(f"unit {item_id!r} of task {task_id!r} is final already")
        when = created or _now()
        conn.execute(
            'INSERT OR REPLACE INTO review_labels (task_id, item_id, reviewer, "values", '
            "rationale, created) VALUES (?, ?, ?, ?, ?, ?)",
            (task_id, item_id, reviewer, json.dumps(checked, sort_keys=True), rationale, when),
        )
        append(
            conn,
            reviewer,
            "review.label",
            f"{task_id}/{item_id}",
            {"values": checked, "rationale": rationale},
        )
        _refresh(conn, task, item_id, reviewer)
    return Label(item_id, reviewer, checked, rationale, when)


def _checked(
    conn: sqlite3.Connection, task_id: str, item_id: str, values: dict[str, str]
) -> tuple[TaskSpec, dict[str, str]]:
    """The task, and ``values`` checked against its label schema (ReviewError naming the unit)."""
    task = get_task(conn, task_id)
    try:
        return task, task.label_schema.check(values)
    except ValueError as exc:
        raise ReviewError(f"task {task_id}, unit {item_id}: {exc}") from None


def adjudicate(
    conn: sqlite3.Connection,
    task_id: str,
    item_id: str,
    adjudicator: str,
    values: dict[str, str],
    rationale: str = "",
    *,
    created: str | None = None,
) -> Label:
    """Decide a unit in the adjudication queue; never by one of its reviewers."""
    task, checked = _checked(conn, task_id, item_id, values)
    with _tx(conn):
        if adjudicator in {lab.by for lab in labels_of(conn, task_id, item_id)}:
            raise ReviewError(f"{adjudicator} labelled unit {item_id!r}: she cannot adjudicate it")
        waiting = len(labels_of(conn, task_id, item_id)) >= task.k
        if not waiting or is_final(conn, task_id, item_id):
            raise ReviewError(
                f"unit {item_id!r} of task {task_id!r} is not waiting for adjudication"
            )
        when = created or _now()
        conn.execute(
            'INSERT INTO review_adjudications (task_id, item_id, adjudicator, "values", '
            "rationale, created) VALUES (?, ?, ?, ?, ?, ?)",
            (task_id, item_id, adjudicator, json.dumps(checked, sort_keys=True), rationale, when),
        )
        append(
            conn,
            adjudicator,
            "review.adjudicate",
            f"{task_id}/{item_id}",
            {"values": checked, "rationale": rationale},
        )
        _refresh(conn, task, item_id, adjudicator)
    return Label(item_id, adjudicator, checked, rationale, when)


# -- progress -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """How far a task is: units, labels in, final, waiting for adjudication, per reviewer."""

    n_units: int
    n_labels: int
    n_expected: int
    n_final: int
    n_agreed: int
    n_adjudicated: int
    n_queue: int
    per_reviewer: dict[str, tuple[int, int]]
    """reviewer -> (labelled, assigned)."""

    @property
    def complete(self) -> bool:
        """Every unit has its final label."""
        return self.n_final == self.n_units


def progress(conn: sqlite3.Connection, task: TaskSpec) -> Progress:
    """The task's progress and per-reviewer counts."""
    tid = task.task_id
    assigned = dict(
        conn.execute(
            "SELECT reviewer, COUNT(*) FROM review_assignments WHERE task_id=? GROUP BY reviewer",
            (tid,),
        ).fetchall()
    )
    done = dict(
        conn.execute(
            "SELECT reviewer, COUNT(*) FROM review_labels WHERE task_id=? GROUP BY reviewer",
            (tid,),
        ).fetchall()
    )
    finals = final_labels(conn, task)
    n_units = len(unit_ids(conn, tid))
    return Progress(
        n_units=n_units,
        n_labels=sum(done.values()),
        n_expected=sum(assigned.values()),
        n_final=len(finals),
        n_agreed=sum(f.how == "agreed" for f in finals.values()),
        n_adjudicated=sum(f.how == "adjudicated" for f in finals.values()),
        n_queue=len(adjudication_queue(conn, task)),
        per_reviewer={r: (int(done.get(r, 0)), int(n)) for r, n in sorted(assigned.items())},
    )


def reviewers_of_run(conn: sqlite3.Connection, run_id: str) -> set[str]:
    """Everyone who labelled or adjudicated a unit of any task of the run."""
    ensure_tables(conn)
    rows = conn.execute(
        "SELECT l.reviewer FROM review_labels l JOIN review_tasks t ON t.task_id=l.task_id "
        "WHERE t.run_id=? UNION SELECT a.adjudicator FROM review_adjudications a "
        "JOIN review_tasks t ON t.task_id=a.task_id WHERE t.run_id=?",
        (run_id, run_id),
    ).fetchall()
    return {str(r[0]) for r in rows}
