"""The review workflow end to end in a real browser (Debian Chromium via Playwright) on a real
uvicorn server on 127.0.0.1: an admin creates a task over 20 units; two reviewers, each in
her own browser context, label them blinded with the keyboard; an adjudicator resolves the
disagreements; the auditor signs the run off; the task's labels feed ``medsafe calibrate``;
``medsafe audit verify`` passes, then fails after a direct SQL edit. Screenshots of every page
in English and Chinese go to $MEDSAFE_SHOTS/review (else the test's temporary folder)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from medsafe.cli import app as cli
from tests.review_support import MODEL, RUN, review_run
from tests.web_support import PASSWORD, make_app, serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
DISAGREE = (5, 10, 15, 20)
"""Positions where the first reviewer says ``unsafe`` and the second ``safe_helpful``."""

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")


class Shots:
    """Screenshots of a page in English and Chinese (the user's language switched and back)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def both(self, page: Page, name: str, now: str = "en") -> None:
        other = "zh" if now == "en" else "en"
        page.screenshot(path=str(self.folder / f"{name}-{now}.png"), full_page=True)
        page.click(f"button[name=lang][value={other}]")
        page.wait_for_load_state("load")
        page.screenshot(path=str(self.folder / f"{name}-{other}.png"), full_page=True)
        page.click(f"button[name=lang][value={now}]")
        page.wait_for_load_state("load")


def _open(browser: Browser, base: str, user: str, errors: list[str]) -> Page:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(base) else r.abort())
    page = context.new_page()

    def on_dialog(d: Dialog) -> None:
        errors.append(f"dialog: {d.message}")
        d.dismiss()

    def on_console(m: ConsoleMessage) -> None:
        if m.type == "error" and "Failed to load resource" not in m.text:  # e.g. favicon.ico
            errors.append(m.text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.goto(f"{base}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    return page


def _label_all(page: Page, base: str, task_id: str, key: str, odd_key: str) -> int:
    """Label every unit of the reviewer's list with the keyboard; returns how many."""
    page.goto(f"{base}/review/task/{task_id}/mine")
    page.click("table.tasks a >> nth=0")
    page.wait_for_url("**/unit/*")
    n = 0
    while "/unit/" in page.url:
        position = int(page.url.rsplit("/", 1)[1])
        text = page.content()
        assert RUN not in text and MODEL not in text and "LLM-RATIONALE" not in text
        before = page.url
        page.keyboard.press(odd_key if position in DISAGREE else key)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url, before=before: url != before)  # type: ignore[misc]
        n += 1
    return n


def test_review_workflow_in_chromium(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    shots = Shots(Path(os.environ.get("MEDSAFE_SHOTS") or tmp_path / "shots") / "review")
    db = tmp_path / "web.db"
    review_run(db)
    app = make_app(tmp_path, db=db)
    errors: list[str] = []
    with serve(app) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            admin = _open(browser, base, "admin", errors)
            admin.goto(f"{base}/review/new")
            shots.both(admin, "new-task")
            admin.select_option("select[name=run_id]", RUN)
            admin.fill("input[name=sample]", "stratified:20")
            admin.select_option("select[name=labels]", "guardian")
            admin.click("#new-task button[type=submit]")
            admin.wait_for_url("**/review/task/task-*")
            task_id = admin.url.rsplit("/", 1)[1]
            assert "0 of 20 units final" in admin.locator("#progress").inner_text()

            ann = _open(browser, base, "reviewer", errors)
            bob = _open(browser, base, "reviewer2", errors)
            bob.click("button[name=lang][value=zh]")  # the second reviewer works in Chinese
            bob.wait_for_load_state("load")
            ann.goto(f"{base}/review")
            shots.both(ann, "reviewer-home")
            ann.goto(f"{base}/review/task/{task_id}/mine")
            ann.click("table.tasks a >> nth=0")
            ann.wait_for_url("**/unit/*")
            first = ann.url
            ann.keyboard.press("n")  # next unit, then back with p
            ann.wait_for_url(lambda url: url != first)
            ann.keyboard.press("p")
            ann.wait_for_url(first)
            shots.both(ann, "unit-blinded")
            assert _label_all(ann, base, task_id, "1", "3") == 20  # 1 safe_helpful, 3 unsafe
            ann.goto(f"{base}/review/task/{task_id}/unit/5")
            assert ann.locator("#own-label").inner_text().strip() == "unsafe"
            shots.both(ann, "unit-after-submit")
            assert _label_all(bob, base, task_id, "1", "1") == 20
            bob.goto(f"{base}/review/task/{task_id}/mine")
            shots.both(bob, "reviewer-units", now="zh")

            judge = _open(browser, base, "adjudicator", errors)
            judge.goto(f"{base}/review/task/{task_id}")
            assert "4 waiting for adjudication" in judge.locator("#progress").inner_text()
            shots.both(judge, "task-overview-before")
            judge.click("a[href*='/adjudicate/'] >> nth=0")
            judge.wait_for_url("**/adjudicate/*")
            shots.both(judge, "adjudicate")
            decided = 0
            while "/adjudicate/" in judge.url:
                before = judge.url
                judge.keyboard.press("2")  # refusal
                judge.keyboard.press("Enter")
                judge.wait_for_url(lambda url, before=before: url != before)  # type: ignore[misc]
                decided += 1
            assert decided == len(DISAGREE)

            admin.goto(f"{base}/review/task/{task_id}")
            assert "20 of 20 units final" in admin.locator("#progress").inner_text()
            shots.both(admin, "task-overview")

            auditor = _open(browser, base, "auditor", errors)
            auditor.goto(f"{base}/review/signoff/{RUN}")
            shots.both(auditor, "signoff-form")
            auditor.check("input[name=decision][value=approve]")
            auditor.fill("textarea[name=comment]", "Reviewed: 4 disagreements adjudicated.")
            auditor.fill("textarea[name=conditions]", "Re-review after any model update.")
            auditor.click("#signoff-form button[type=submit]")
            auditor.wait_for_load_state("load")
            assert auditor.locator("#signoffs tr.current").count() == 1
            shots.both(auditor, "signoff-done")
        finally:
            browser.close()
    assert errors == []

    runner = CliRunner()
    labels = tmp_path / "labels.jsonl"
    exported = runner.invoke(cli, ["review", "labels", task_id, "-o", str(labels), "--db", str(db)])
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(x) for x in labels.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 20 and sum(r["label"] == "refusal" for r in rows) == len(DISAGREE)
    calibrated = runner.invoke(
        cli, ["calibrate", "--from-task", task_id, "--db", str(db), "--json"]
    )
    assert calibrated.exit_code == 0, calibrated.output
    report = json.loads(calibrated.output)
    assert report["scorer"] == "guardian" and report["n_rows"] == 20
    verify = ["audit", "verify", "--db", str(db)]
    assert runner.invoke(cli, verify).exit_code == 0
    with sqlite3.connect(db) as conn:
        seq = conn.execute("SELECT MIN(seq) FROM audit_log WHERE action='review.label'").fetchone()[
            0
        ]
        conn.execute(
            "UPDATE audit_log SET payload = replace(payload, 'safe_helpful', 'unsafe') WHERE seq=?",
            (seq,),
        )
    broken = runner.invoke(cli, verify)
    assert broken.exit_code == 1 and str(seq) in broken.output, broken.output
