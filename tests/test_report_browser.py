"""The HTML report in a real browser (Debian Chromium driven by Playwright), fully offline.

Every request other than ``file:`` and ``data:`` is aborted and recorded, so the test proves
the page needs no network; it then finds each section by its heading and checks that every
figure decoded. Skipped only when /usr/bin/chromium is missing (``make system-deps``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from medsafe.report.render import report_html
from tests.test_report import XSS, Row, graded, guardian, make_open, mixed_rows, write_run

if TYPE_CHECKING:
    from playwright.sync_api import Dialog, Route

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SECTIONS = (
    "Overview",
    "Results by category",
    "Ethics vs safety",
    "Safety across turns",
    "Model comparison",
    "Worst answers",
    "Provenance",
    "Methods",
)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")


def _report(tmp_path: Path) -> Path:
    db = tmp_path / "s.db"
    refs = []
    for run_id, shift in (("base", 0), ("tuned", 1)):
        rows = mixed_rows([True, False, True] * 8, [True] * 10 + [False] * (4 - 2 * shift))
        zh = make_open(90, category="medes-assisted-reproduction", language="zh",
                       text="医生可以替患者做决定吗？")  # fmt: skip
        rows.append(Row(zh, f"可以。{XSS}", [guardian(zh.id, "unsafe", f"理由 {XSS}")]))
        for i in range(8):
            item = make_open(60 + i, category="cn-ethics-informed-consent", language="ja")
            item = item.model_copy(update={"kind": "dialogue"})
            turns = [graded(item.id, "turn_safety", 9.0 - t + shift, turn=t) for t in (1, 2, 3)]
            rows.append(Row(item, "はい。", turns))
        refs.append(write_run(db, run_id, f"openai/{run_id}", rows))
    path = tmp_path / "report.html"
    path.write_text(report_html(refs), encoding="utf-8")
    return path


def test_report_opens_offline_with_every_section(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    path = _report(tmp_path)
    blocked: list[str] = []
    dialogs: list[str] = []

    def route(r: Route) -> None:
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    def dialog(d: Dialog) -> None:
        dialogs.append(d.message)
        d.dismiss()

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", route)
            page.on("dialog", dialog)
            page.goto(path.as_uri(), wait_until="load")
            assert blocked == [], f"the report asked the network for {blocked}"
            headings = page.locator("h2").all_inner_texts()
            for name in SECTIONS:
                assert page.get_by_role("heading", name=name, exact=True).count() == 1, name
            assert headings == list(SECTIONS)
            images = page.locator("img")
            assert images.count() >= 5
            decoded = page.evaluate(
                "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
            )
            assert decoded
            assert page.locator("script").count() == 0  # the model's <script> stayed text
            assert XSS in page.locator("#worst").inner_text()
            assert "医生可以替患者做决定吗？" in page.locator("#worst").inner_text()
        finally:
            browser.close()
    assert blocked == []
    assert dialogs == []
