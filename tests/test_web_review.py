"""The review pages over HTTP: task creation, blinded labelling (asserted on the HTML),
adjudication, sign-off, roles, CSRF, exports and the review catalogs in three languages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi import FastAPI

from medsafe.review.tasks import get_task, unit_ids
from medsafe.store.sqlite import connect
from tests.review_support import MODEL, RUN, review_run
from tests.web_support import login, make_app

LOCALES = Path(__file__).parents[1] / "src/medsafe/web/locales"


@pytest.fixture
def app(tmp_path: Path, any_db: Path) -> FastAPI:
    """The workbench on a reviewed run, on SQLite and on PostgreSQL."""
    db = any_db
    review_run(db)
    return make_app(tmp_path, db)


def _create(app: FastAPI, sample: str = "ids:o00000,o00001,o00002") -> str:
    admin = login(app, "admin")
    page = admin.get("/review/new")
    assert page.status_code == 200 and RUN in page.text and "reviewer2" in page.text
    made = admin.post_form(
        "/review/new",
        {
            "run_id": RUN,
            "sample": sample,
            "labels": "guardian",
            "reviewers": ["reviewer", "reviewer2"],
            "k": "2",
        },
    )
    assert made.status_code == 303, made.text
    return str(made.headers["location"]).rsplit("/", 1)[1]


def test_reviewer_pages_are_blinded_until_she_submits(app: FastAPI, tmp_path: Path) -> None:
    task_id = _create(app)
    ann, bob = login(app, "reviewer"), login(app, "reviewer2")
    bob.post_form(
        f"/review/task/{task_id}/unit/1",
        {"field.verdict": "unsafe", "rationale": "BOB-NOTE <img src=x onerror=alert(2)>"},
    )
    page = ann.get(f"/review/task/{task_id}/unit/1")
    assert page.status_code == 200
    for secret in (RUN, MODEL, "LLM-RATIONALE", "BOB-NOTE", "reviewer2", "o00000"):
        assert secret not in page.text, secret
    assert "Answer 0 &lt;script&gt;" in page.text and "<script>alert" not in page.text
    assert 'id="label-form"' in page.text and "/static/review.js" in page.text
    # the overview (with the run) stays closed to her while she has units to label
    assert ann.get(f"/review/task/{task_id}").headers["location"].endswith("/mine")
    done = ann.post_form(f"/review/task/{task_id}/unit/1", {"field.verdict": "unsafe"})
    assert done.status_code == 303 and done.headers["location"].endswith("/unit/2")
    after = ann.get(f"/review/task/{task_id}/unit/1")
    assert "BOB-NOTE" in after.text and "LLM-RATIONALE" in after.text
    assert "BOB-NOTE &lt;img src=x onerror=alert(2)&gt;" in after.text and "<img" not in after.text
    assert "<script>" not in re.sub(r"<script src=[^>]*></script>", "", after.text)


def test_disagreement_goes_to_an_adjudicator_then_the_auditor_signs(app: FastAPI) -> None:
    task_id = _create(app, "ids:o00000")
    ann, bob = login(app, "reviewer"), login(app, "reviewer2")
    ann.post_form(f"/review/task/{task_id}/unit/1", {"field.verdict": "unsafe"})
    bob.post_form(f"/review/task/{task_id}/unit/1", {"field.verdict": "refusal"})
    auditor = login(app, "auditor")
    blocked = auditor.get(f"/review/signoff/{RUN}")
    assert "not complete" in blocked.text and 'id="signoff-form"' not in blocked.text
    assert auditor.post_form(f"/review/signoff/{RUN}", {"decision": "approve"}).status_code == 409
    assert ann.get(f"/review/task/{task_id}/adjudicate/1").status_code == 403  # not her role
    judge = login(app, "adjudicator")
    home = judge.get("/review")
    assert task_id in home.text
    overview = judge.get(f"/review/task/{task_id}")
    assert "Gwet" in overview.text and "/adjudicate/1" in overview.text
    live = judge.get(f"/review/task/{task_id}/live")  # what htmx polls: a fragment
    assert live.text.lstrip().startswith('<div id="live" hx-get=') and "<html" not in live.text
    assert "1 waiting for adjudication" in live.text
    page = judge.get(f"/review/task/{task_id}/adjudicate/1")
    assert page.status_code == 200 and "reviewer2" in page.text
    assert (
        judge.post(
            f"/review/task/{task_id}/adjudicate/1", data={"field.verdict": "unsafe"}
        ).status_code
        == 403
    )  # no CSRF token
    done = judge.post_form(f"/review/task/{task_id}/adjudicate/1", {"field.verdict": "unsafe"})
    assert done.status_code == 303
    signed = auditor.post_form(f"/review/signoff/{RUN}", {"decision": "approve", "comment": "ok"})
    assert signed.status_code == 303
    history = auditor.get(f"/review/signoff/{RUN}")
    assert 'class="current"' in history.text and "ok" in history.text


def test_roles_and_exports(app: FastAPI) -> None:
    task_id = _create(app, "ids:o00000")
    viewer = login(app, "viewer")
    for url in ("/review", f"/review/task/{task_id}", "/review/new", f"/review/signoff/{RUN}"):
        assert viewer.get(url).status_code == 403, url
    ann = login(app, "reviewer")
    assert ann.get("/review/new").status_code == 403
    assert ann.get(f"/review/signoff/{RUN}").status_code == 403
    assert ann.get(f"/review/task/{task_id}/export").status_code == 403
    admin = login(app, "admin")
    lines = admin.get(f"/review/task/{task_id}/export").text.splitlines()
    assert json.loads(lines[0])["format"] == "medsafe-review/1"
    assert admin.get(f"/review/task/{task_id}/unit/1").status_code == 403  # admin is no reviewer
    assert admin.get("/review/task/nope").status_code == 404


def test_admin_form_errors_are_shown_not_raised(app: FastAPI) -> None:
    admin = login(app, "admin")
    bad = admin.post_form(
        "/review/new",
        {
            "run_id": RUN,
            "sample": "ids:zzz",
            "labels": "guardian",
            "reviewers": ["reviewer", "reviewer2"],
        },
    )
    assert bad.status_code == 400 and "no reviewable item" in bad.text
    wrong = admin.post_form(
        "/review/new",
        {
            "run_id": RUN,
            "sample": "flagged",
            "labels": "guardian",
            "reviewers": ["reviewer", "auditor"],
        },
    )
    assert wrong.status_code == 400 and "not an enabled reviewer account: auditor" in wrong.text


def test_every_review_key_exists_in_three_languages() -> None:
    tables = {
        lang: json.loads((LOCALES / f"review.{lang}.json").read_text(encoding="utf-8"))
        for lang in ("en", "zh", "ja")
    }
    assert set(tables["en"]) == set(tables["zh"]) == set(tables["ja"])
    templates = Path(__file__).parents[1] / "src/medsafe/web/templates"
    used = set()
    for path in templates.glob("review_*.html"):
        used |= set(re.findall(r"""t\(["'](review\.[a-z_.]+[a-z_])["']""", path.read_text()))
    assert used <= set(tables["en"]), used - set(tables["en"])


def test_tasks_use_the_store_the_app_serves(app: FastAPI) -> None:
    task_id = _create(app)
    conn = connect(app.state.db)
    try:
        assert len(unit_ids(conn, task_id)) == 3
        assert get_task(conn, task_id).reviewers == ("reviewer", "reviewer2")
    finally:
        conn.close()


def test_agreement_on_the_task_page_follows_new_labels(app: FastAPI) -> None:
    task_id = _create(app, "ids:o00000,o00001")
    ann, bob, admin = login(app, "reviewer"), login(app, "reviewer2"), login(app, "admin")
    for client in (ann, bob):
        client.post_form(f"/review/task/{task_id}/unit/1", {"field.verdict": "unsafe"})
    assert "(units: 1)" in admin.get(f"/review/task/{task_id}/live").text
    for client in (ann, bob):
        client.post_form(f"/review/task/{task_id}/unit/2", {"field.verdict": "refusal"})
    assert "(units: 2)" in admin.get(f"/review/task/{task_id}/live").text


def test_a_unit_whose_run_was_deleted_is_not_found(app: FastAPI) -> None:
    from medsafe.store.sqlite import Store

    task_id = _create(app, "ids:o00000")
    with Store(app.state.db) as store:
        store.delete_run(RUN)
    assert login(app, "reviewer").get(f"/review/task/{task_id}/unit/1").status_code == 404
