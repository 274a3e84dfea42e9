"""The workbench in a real browser (Debian Chromium via Playwright) on a real uvicorn server
on 127.0.0.1: login through the form, hostile run text rendered as text (no dialog, no extra
DOM node, no CSP violation), the language switch, and screenshots of every browse page in
English and Chinese (into $MEDSAFE_SHOTS when set, else the test's temporary folder)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import pytest

from tests.web_support import HOSTILE, PASSWORD, browse_store, make_app, serve

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Dialog, Page, Route

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")


def _login(page: Page, base: str, user: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def test_browse_pages_in_chromium(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    shots = Path(os.environ.get("MEDSAFE_SHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "web.db"
    ids = browse_store(db)
    app = make_app(tmp_path, db=db)
    hostile = ids["hostile"]
    dialogs: list[str] = []
    problems: list[str] = []
    outside: list[str] = []

    def on_dialog(d: Dialog) -> None:
        dialogs.append(d.message)
        d.dismiss()

    def on_console(m: ConsoleMessage) -> None:
        if m.type == "error":
            problems.append(m.text)

    with serve(app) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})

            def only_this_server(route: Route) -> None:
                if route.request.url.startswith(base):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            context.route("**/*", only_this_server)
            page = context.new_page()
            page.on("dialog", on_dialog)
            page.on("console", on_console)
            page.goto(f"{base}/runs")
            assert page.url.startswith(f"{base}/login?next=")
            page.screenshot(path=str(shots / "login-en.png"))
            _login(page, base, "admin")
            assert page.url == f"{base}/runs"
            pages = {
                "runs": "/runs",
                "run": "/run?" + urlencode({"id": hostile}),
                "items": "/run/items?" + urlencode({"id": hostile}),
                "transcript": "/item?" + urlencode({"run": hostile, "id": "o00001"}),
                "compare": "/compare?" + urlencode({"a": hostile, "b": "base"}),
                "search": "/run/items?" + urlencode({"id": hostile, "q": HOSTILE[1]}),
            }
            bodies = {}
            for name, url in pages.items():
                page.goto(base + url)
                assert page.locator("h1").count() == 1, name
                # the hostile text is there, as text, and added no element
                assert page.locator("img").count() == 0, name
                assert page.locator("[onerror]").count() == 0, name
                assert page.locator("script").count() == 2, name  # htmx and app.js only
                body = page.locator("main").inner_text()
                assert HOSTILE[0] in body and "{{7*7}}" in body, name
                assert "49" not in body.replace("2049", ""), name
                bodies[name] = body
            transcript = bodies["transcript"]
            assert "\u202eevil\u202c" in transcript and "zero\u200bwidth" in transcript
            assert page.evaluate("window.htmx !== undefined"), "htmx did not load"
            page.set_viewport_size({"width": 1280, "height": 1400})
            for lang in ("en", "zh"):
                if lang == "zh":
                    page.goto(f"{base}/runs")
                    page.click("button[name=lang][value=zh]")
                    page.wait_for_load_state("load")
                    assert "运行记录" in page.locator("h1").inner_text()
                for name, url in {
                    "runs": "/runs",
                    "run": "/run?id=base",
                    "run-dialogue": "/run?id=talks",
                    "items": "/run/items?id=base",
                    "transcript": "/item?run=base&id=o00090",
                    "transcript-hostile": pages["transcript"],
                    "compare": "/compare?a=base&b=tuned",
                }.items():
                    page.goto(base + url)
                    page.screenshot(path=str(shots / f"{name}-{lang}.png"), full_page=True)
            cjk = page.evaluate("document.fonts.check('16px \"Noto Sans CJK SC\"', '运行')")
            assert cjk
            anonymous = browser.new_context()
            login_page = anonymous.new_page()
            login_page.goto(f"{base}/login?lang=zh")
            login_page.screenshot(path=str(shots / "login-zh.png"))
            assert "登录" in login_page.locator("h1").inner_text()
        finally:
            browser.close()
    assert dialogs == []
    assert outside == []
    assert not [p for p in problems if "Content Security Policy" in p], problems
