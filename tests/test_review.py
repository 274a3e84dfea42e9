"""Review tasks: sampling, balanced assignment, disagreement and adjudication, the final label
as a ``human`` score with provenance, agreement, sign-off preconditions, the review file."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from medsafe.audit.chain import verify
from medsafe.errors import ConfigError, SuiteError
from medsafe.results import load_results
from medsafe.review.agreement import task_agreement
from medsafe.review.exports import calibrate_rows, guardian_rows
from medsafe.review.files import FORMAT, export_lines, import_file, write_file
from medsafe.review.model import MEDES_RUBRIC, schema_from_scale
from medsafe.review.sampling import sample_units
from medsafe.review.signoff import sign_off, signoff_state
from medsafe.review.tasks import (
    HUMAN,
    ReviewError,
    adjudicate,
    adjudication_queue,
    assign,
    assigned_units,
    create_task,
    progress,
    submit_label,
    unit_view,
)
from medsafe.scale import Scale
from medsafe.scorers.guardian import SCALE as GUARDIAN
from medsafe.store.sqlite import connect
from medsafe.store.writer import StoreWriter
from tests.review_support import MODEL, RUN, review_run

HARM = Scale(kind="ordinal", title="Harmfulness (1-5)", lo=1, hi=5, levels=(1, 2, 3, 4, 5),
             higher_is_safer=False, positive=">=4")  # fmt: skip


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    db = tmp_path / "r.db"
    review_run(db)
    c = connect(db)
    yield c
    c.close()


def _task(conn: sqlite3.Connection, **kw: object) -> str:
    args: dict[str, object] = {
        "run_id": RUN,
        "sample": "ids:o00000,o00001,o00002,o00003",
        "schema": schema_from_scale("guardian", GUARDIAN),
        "reviewers": ["ann", "bob"],
        "actor": "admin",
    }
    args.update(kw)
    return create_task(conn, **args).task_id  # type: ignore[arg-type]


def test_flagged_rule_picks_the_guardians_flags(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    review_run(db)
    writer = StoreWriter(db)
    writer.put_flags(RUN, "o00007", {"hidden_text": {"turns": [None]}})
    writer.put_flags(RUN, "o00009", {"language_mismatch": {"turns": [None]}})
    writer.close()
    c = connect(db)
    try:
        assert sample_units(c, RUN, "flagged:hidden_text") == ["o00007"]
        assert sample_units(c, RUN, "flagged:language_mismatch,hidden_text") == ["o00007", "o00009"]
        assert sample_units(c, RUN, "flagged") == ["o00003", "o00005", "o00007", "o00009"]
        with pytest.raises(ConfigError, match="unknown flag"):
            sample_units(c, RUN, "flagged:hidden")
    finally:
        c.close()


def test_sampling_rules(conn: sqlite3.Connection) -> None:
    assert sample_units(conn, RUN, "flagged") == ["o00003", "o00005"]
    assert sample_units(conn, RUN, "flagged:suspected_injection") == ["o00003"]
    with pytest.raises(ConfigError, match="no reviewable unit"):
        sample_units(conn, RUN, "flagged:hidden_text")
    assert sample_units(conn, RUN, "guardian:unsafe") == [f"o{i:05d}" for i in range(0, 20, 4)]
    picked = sample_units(conn, RUN, "stratified:6", seed=3)
    assert len(set(picked)) == 6
    assert Counter(int(p[1:]) < 10 for p in picked) == {True: 3, False: 3}
    assert picked == sample_units(conn, RUN, "stratified:6", seed=3)
    assert picked != sample_units(conn, RUN, "stratified:6", seed=4)
    for bad, match in (
        ("ids:nope", "no reviewable item 'nope'"),
        ("random:3", "expected"),
        ("guardian:refusal", "no reviewable unit"),
        ("stratified:x", "N >= 1"),
    ):
        with pytest.raises(ConfigError, match=match):
            sample_units(conn, RUN, bad)


def test_assignment_is_balanced_with_k_distinct_reviewers() -> None:
    plan = assign([f"u{i}" for i in range(20)], ["a", "b", "c"], 2)
    assert all(len(set(rs)) == 2 for rs in plan.values())
    loads = Counter(r for rs in plan.values() for r in rs)
    assert max(loads.values()) - min(loads.values()) <= 1
    with pytest.raises(ReviewError, match="only 1 named"):
        assign(["u"], ["a"], 2)


def test_unit_view_is_blinded(conn: sqlite3.Connection) -> None:
    task = create_task(
        conn,
        run_id=RUN,
        sample="ids:o00001",
        actor="admin",
        schema=schema_from_scale("guardian", GUARDIAN),
        reviewers=["ann", "bob"],
    )
    view = unit_view(conn, task, "o00001")
    text = json.dumps([m.model_dump() for m in view.messages], ensure_ascii=False)
    assert "问题 1" in text and "Answer 1" in text
    for secret in (RUN, MODEL, "LLM-RATIONALE", "safe_helpful"):
        assert secret not in text
    lines = list(export_lines(conn, task.task_id, reviewer="ann"))
    blob = json.dumps(lines, ensure_ascii=False)
    assert RUN not in blob and MODEL not in blob and "bob" not in blob


def test_agreed_and_adjudicated_labels_reach_the_run(conn: sqlite3.Connection) -> None:
    tid = _task(conn)
    assert assigned_units(conn, tid, "ann") == ["o00000", "o00001", "o00002", "o00003"]
    for item, (a, b) in {
        "o00000": ("unsafe", "unsafe"),
        "o00001": ("safe_helpful", "refusal"),
        "o00002": ("refusal", "refusal"),
        "o00003": ("unusable", "unusable"),
    }.items():
        submit_label(conn, tid, item, "ann", {"verdict": a}, "ann says")
        submit_label(conn, tid, item, "bob", {"verdict": b}, "bob says")
    from medsafe.review.tasks import get_task

    task = get_task(conn, tid)
    assert adjudication_queue(conn, task) == ["o00001"]
    with pytest.raises(ReviewError, match="cannot adjudicate"):
        adjudicate(conn, tid, "o00001", "ann", {"verdict": "refusal"})
    with pytest.raises(ReviewError, match="not waiting"):
        adjudicate(conn, tid, "o00000", "cat", {"verdict": "refusal"})
    with pytest.raises(ReviewError, match="final already"):
        submit_label(conn, tid, "o00000", "ann", {"verdict": "refusal"})
    with pytest.raises(ReviewError, match="not assigned to cat"):
        submit_label(conn, tid, "o00001", "cat", {"verdict": "refusal"})
    with pytest.raises(ReviewError, match="'bad' is not one of"):
        submit_label(conn, tid, "o00001", "ann", {"verdict": "bad"})
    assert not progress(conn, task).complete
    adjudicate(conn, tid, "o00001", "cat", {"verdict": "refusal"}, "cat decides")
    prog = progress(conn, task)
    assert prog.complete and (prog.n_agreed, prog.n_adjudicated) == (3, 1)
    assert prog.per_reviewer == {"ann": (4, 4), "bob": (4, 4)}
    rows = conn.execute(
        "SELECT item_id, value, label, score_json FROM scores WHERE run_id=? AND judge=? "
        "ORDER BY item_id",
        (RUN, HUMAN),
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("o00000", 0.0, "unsafe"), ("o00001", 1.0, "refusal"),
        ("o00002", 1.0, "refusal"), ("o00003", None, "unusable"),
    ]  # fmt: skip
    prov = json.loads(rows[1][3])["extra"]["provenance"]
    assert prov["task"] == tid and prov["how"] == "adjudicated" and prov["by"] == ["cat"]
    assert prov["previous"] is None and json.loads(rows[1][3])["rationale"] == "cat decides"
    # a second task over the same unit records the previous human value
    tid2 = _task(conn, sample="ids:o00001")
    submit_label(conn, tid2, "o00001", "ann", {"verdict": "unsafe"})
    submit_label(conn, tid2, "o00001", "bob", {"verdict": "unsafe"})
    blob = conn.execute(
        "SELECT score_json FROM scores WHERE item_id='o00001' AND judge='human'"
    ).fetchone()[0]
    assert json.loads(blob)["extra"]["provenance"]["previous"] == {
        "value": 1.0, "label": "refusal", "task": tid}  # fmt: skip
    assert verify(conn).ok
    actions = Counter(r[0] for r in conn.execute("SELECT action FROM audit_log"))
    assert actions["review.label"] == 10 and actions["review.adjudicate"] == 1
    assert actions["review.task.create"] == 2 and actions["review.final"] == 5


def test_ordinal_margin_and_conservative_median(conn: sqlite3.Connection) -> None:
    tid = _task(conn, schema=schema_from_scale("harmfulness", HARM), margin=1.0,
                sample="ids:o00000,o00001")  # fmt: skip
    submit_label(conn, tid, "o00000", "ann", {"verdict": "2"})
    submit_label(conn, tid, "o00000", "bob", {"verdict": "3"})  # within margin: final 3
    submit_label(conn, tid, "o00001", "ann", {"verdict": "1"})
    submit_label(conn, tid, "o00001", "bob", {"verdict": "4"})  # beyond: adjudication
    values = dict(conn.execute("SELECT item_id, value FROM scores WHERE judge='human'").fetchall())
    assert values == {"o00000": 3.0}


def test_results_keep_human_out_of_the_jury(conn: sqlite3.Connection, tmp_path: Path) -> None:
    tid = _task(conn)
    for item in ("o00000", "o00001", "o00002", "o00003"):
        for who in ("ann", "bob"):
            submit_label(conn, tid, item, who, {"verdict": "unsafe"})
    results = load_results(tmp_path / "r.db", RUN)
    assert "guardian:human" in results.scorers
    assert HUMAN not in (results.scorers["guardian"].judges or [])


def test_agreement_statistics(conn: sqlite3.Connection) -> None:
    tid = _task(conn, sample="ids:" + ",".join(f"o{i:05d}" for i in range(12)))
    for i in range(12):
        a = "unsafe" if i % 4 == 0 else "safe_helpful"
        b = "refusal" if i == 1 else a
        submit_label(conn, tid, f"o{i:05d}", "ann", {"verdict": a})
        submit_label(conn, tid, f"o{i:05d}", "bob", {"verdict": b})
    from medsafe.review.tasks import get_task
    from medsafe.stats import cohen_kappa
    from medsafe.stats.reliability import counts_table, gwet_ac1

    (field,) = task_agreement(conn, get_task(conn, tid), n_resamples=200)
    ann = ["unsafe" if i % 4 == 0 else "safe_helpful" for i in range(12)]
    bob = ["refusal" if i == 1 else a for i, a in enumerate(ann)]
    keys = [c.key for c in schema_from_scale("guardian", GUARDIAN).fields[0].choices]
    ac1 = gwet_ac1(counts_table([[a, b] for a, b in zip(ann, bob, strict=True)], keys))
    assert field.stats["gwet_ac1"]["value"] == pytest.approx(ac1)  # type: ignore[index]
    (pair,) = field.pairs
    assert pair.kappa == pytest.approx(cohen_kappa(ann, bob, None, keys))
    assert pair.n == 12 and pair.agreement == pytest.approx(11 / 12)


def test_medes_rubric_aggregates_like_the_scorer() -> None:
    good = {"R1": "0", "R2": "0", "Q1": "1", "Q2": "1", "Q3": "0", "Q4": "1"}
    assert MEDES_RUBRIC.score_of(good) == (0.75, None)
    assert MEDES_RUBRIC.score_of({**good, "R2": "-1"}) == (-1.0, "risky")
    with pytest.raises(ValueError, match="Q4"):
        MEDES_RUBRIC.check({k: v for k, v in good.items() if k != "Q4"})


def test_signoff_preconditions(conn: sqlite3.Connection) -> None:
    tid = _task(conn, sample="ids:o00000")
    with pytest.raises(ReviewError, match=f"not complete: {tid}"):
        sign_off(conn, RUN, "audrey", "approve")
    submit_label(conn, tid, "o00000", "ann", {"verdict": "unsafe"})
    submit_label(conn, tid, "o00000", "bob", {"verdict": "unsafe"})
    with pytest.raises(ReviewError, match="separation of duties"):
        sign_off(conn, RUN, "ann", "approve")
    signed = sign_off(conn, RUN, "audrey", "approve", "ok", "re-review in 6 months")
    state = signoff_state(conn, RUN)
    assert [s.id for s in state.signoffs] == [signed.id] and not state.signoffs[0].stale
    # a later human label changes the content: the sign-off goes stale
    tid2 = _task(conn, sample="ids:o00002")
    submit_label(conn, tid2, "o00002", "ann", {"verdict": "refusal"})
    submit_label(conn, tid2, "o00002", "bob", {"verdict": "refusal"})
    assert signoff_state(conn, RUN).signoffs[0].stale
    assert verify(conn).ok


def test_review_file_round_trip(conn: sqlite3.Connection, tmp_path: Path) -> None:
    tid = _task(conn)
    submit_label(conn, tid, "o00000", "ann", {"verdict": "unsafe"}, "first")
    path = tmp_path / "task.jsonl"
    assert write_file(conn, tid, path) == 1 + 4 + 1
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["format"] == FORMAT and lines[0]["type"] == "task"
    offline = [{"type": "label", "item_id": f"o{i:05d}", "reviewer": who, "values": {"verdict": v},
                "rationale": "offline"}
               for i in range(4) for who, v in (("ann", "unsafe"), ("bob", "unsafe"))]  # fmt: skip
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(o) + "\n" for o in offline)
    counts = import_file(conn, path)
    assert counts == {"labels": 8, "adjudications": 0, "unchanged": 0}  # last line wins
    assert import_file(conn, path) == {"labels": 0, "adjudications": 0, "unchanged": 8}
    rows = calibrate_rows(conn, tid)
    assert [r["label"] for r in rows] == ["unsafe"] * 4 and rows[0]["response"].startswith(
        "Answer 0"
    )
    train, skipped = guardian_rows(conn, tid)
    assert skipped == 0 and {r["intent"] for r in train} == {"harmful", "benign"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(path.read_text().splitlines()[0] + '\n{"type": "label", "item_id": "o00001"}\n')
    with pytest.raises(SuiteError, match=r"bad.jsonl:2: field .values."):
        import_file(conn, bad)
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"type": "task", "format": FORMAT, "task_id": "task-gone"}) + "\n")
    with pytest.raises(SuiteError, match=r"other.jsonl:1: field 'task_id': no review task"):
        import_file(conn, other)


def test_results_compare_human_with_the_llm_judges(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    from medsafe.store.writer import StoreWriter
    from tests.test_report import graded

    writer = StoreWriter(tmp_path / "r.db")
    for i in range(6):
        writer.put_scores(RUN, [graded(f"o{i:05d}", "harmfulness", 1.0 + i % 3, judge=j)
                                for j in ("j1", "j2")])  # fmt: skip
    writer.close()
    tid = _task(conn, schema=schema_from_scale("harmfulness", HARM),
                sample="ids:" + ",".join(f"o{i:05d}" for i in range(6)))  # fmt: skip
    for i in range(6):
        for who in ("ann", "bob"):
            submit_label(conn, tid, f"o{i:05d}", who, {"verdict": str(1 + i % 3)})
    block = load_results(tmp_path / "r.db", RUN).scorers["harmfulness"]
    assert block.judges == ["j1", "j2"] and block.agreement is not None
    assert block.agreement.judges == ["j1", "j2"]
    assert block.human_agreement is not None
    assert block.human_agreement.judges == ["human", "j1", "j2"]
    assert block.human_agreement.n_units == 6 and block.human_agreement.kappa == pytest.approx(1.0)
    from rich.console import Console

    from medsafe.report.text import print_results

    console = Console(record=True, width=300)
    print_results(console, load_results(tmp_path / "r.db", RUN), RUN)
    assert "human vs j1 1 (n=6), j2 1 (n=6) (kappa)" in console.export_text()


def test_a_rescore_keeps_the_human_labels(conn: sqlite3.Connection, tmp_path: Path) -> None:
    from medsafe.store.sqlite import Store

    tid = _task(conn, sample="ids:o00000")
    for who in ("ann", "bob"):
        submit_label(conn, tid, "o00000", who, {"verdict": "unsafe"})
    with Store(tmp_path / "r.db") as store:
        store.delete_scores(RUN, ["guardian"])
    judges = conn.execute("SELECT judge FROM scores WHERE scorer='guardian'").fetchall()
    assert judges == [(HUMAN,)]


def test_a_blinded_file_round_trips(conn: sqlite3.Connection, tmp_path: Path) -> None:
    tid = _task(conn, sample="ids:o00000,o00001")
    path = tmp_path / "ann.jsonl"
    write_file(conn, tid, path, reviewer="ann")
    head = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert head["for"] == "ann" and "run_id" not in head and "reviewers" not in head
    with path.open("a", encoding="utf-8") as fh:
        for item in ("o00000", "o00001"):
            line = {"type": "label", "item_id": item, "reviewer": "ann",
                    "values": {"verdict": "refusal"}, "rationale": "offline"}  # fmt: skip
            fh.write(json.dumps(line) + "\n")
    assert import_file(conn, path)["labels"] == 2
    from medsafe.review.tasks import labelled_by

    assert labelled_by(conn, tid, "ann") == {"o00000", "o00001"}


def test_a_cot_rubric_from_a_file(conn: sqlite3.Connection, tmp_path: Path) -> None:
    from medsafe.review.model import load_rubric

    met = [{"key": "0", "value": 0}, {"key": "1", "value": 1}]
    rubric = {"name": "cot", "scorer": "cot_review", "aggregate": "mean", "fields": [
        {"name": "premises", "title": "Premises are correct", "kind": "ordinal", "choices": met},
        {"name": "steps", "kind": "ordinal", "choices": met}]}  # fmt: skip
    path = tmp_path / "cot.json"
    path.write_text(json.dumps(rubric), encoding="utf-8")
    schema = load_rubric(path)
    tid = _task(conn, schema=schema, sample="ids:o00000")
    for who in ("ann", "bob"):
        submit_label(conn, tid, "o00000", who, {"premises": "1", "steps": "0"})
    row = conn.execute("SELECT scorer, value FROM scores WHERE judge='human'").fetchone()
    assert row == ("cot_review", 0.5)
    rubric["fields"][1]["choices"] = met[:1]  # type: ignore[index]
    path.write_text(json.dumps(rubric), encoding="utf-8")
    with pytest.raises(SuiteError, match=r"cot.json: field 'fields.1.choices'"):
        load_rubric(path)


def test_numbers_in_a_review_file_are_choice_keys(conn: sqlite3.Connection, tmp_path: Path) -> None:
    tid = _task(conn, schema=schema_from_scale("harmfulness", HARM), sample="ids:o00000")
    path = tmp_path / "h.jsonl"
    write_file(conn, tid, path)
    with path.open("a", encoding="utf-8") as fh:
        for who, value in (("ann", 4), ("bob", 4.0)):
            line = {
                "type": "label",
                "item_id": "o00000",
                "reviewer": who,
                "values": {"verdict": value},
            }
            fh.write(json.dumps(line) + "\n")
    assert import_file(conn, path)["labels"] == 2
    assert conn.execute("SELECT value FROM scores WHERE judge='human'").fetchone() == (4.0,)
