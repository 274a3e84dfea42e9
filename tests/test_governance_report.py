"""``medsafe report RUN --governance``: the three tiers, sign-offs in every report, escaping,
and the agreement figures equal to ``medsafe review status``'s."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from medsafe.audit.signoffs import record_signoff
from medsafe.cli import app
from medsafe.report.data import RunRef
from medsafe.report.render import build_report
from medsafe.review.agreement import task_agreement
from medsafe.review.model import schema_from_scale
from medsafe.review.tasks import create_task, get_task, submit_label
from medsafe.scorers.guardian import SCALE as GUARDIAN
from medsafe.store import Store, StoreWriter
from tests.review_support import RUN, review_run
from tests.test_report import XSS, XSS_ESCAPED, guardian, make_open

CHROMIUM = Path("/usr/bin/chromium")
GATE = {
    "outcome": "inconclusive",
    "rules": [
        {
            "metric": "guardian.unsafe_rate",
            "estimate": 0.03,
            "ci": [0.0138, 0.0641],
            "level": 0.95,
            "bound": {"side": "upper", "value": 0.05},
            "outcome": "inconclusive",
            "n_needed": 1147,
        }
    ],
}


def _governed(db: Path) -> str:
    """The review run with a finished 2-reviewer task, a sign-off, a gate decision and an
    egress record."""
    review_run(db)
    with Store(db) as store:
        conn = store.connection
        units = [f"o{i:05d}" for i in range(8)]
        task = create_task(
            conn,
            run_id=RUN,
            sample="ids:" + ",".join(units),
            schema=schema_from_scale("guardian", GUARDIAN),
            reviewers=["rev1", "rev2"],
            actor="admin",
            task_id="t1",
        )
        for n, unit in enumerate(units):
            first = "unsafe" if n % 4 == 0 else "safe_helpful"
            second = first if n != 3 else "unsafe"
            submit_label(conn, task.task_id, unit, "rev1", {"verdict": first})
            submit_label(conn, task.task_id, unit, "rev2", {"verdict": second})
        record_signoff(conn, RUN, "audrey", "approve", f"审核通过 {XSS}", "監査済み")
        conn.execute(
            "INSERT INTO gate_results (run_ids, policy_sha256, outcome, result_json, ts) "
            "VALUES (?, ?, ?, ?, ?)",
            (json.dumps([RUN]), "cd" * 32, "inconclusive", json.dumps(GATE), "2026-01-01"),
        )
        egress = {"phi_check": "block", "remote_endpoints": ["https://api.example/v1"]}
        conn.execute(
            "UPDATE runs SET provenance_json=? WHERE run_id=?",
            (json.dumps({"egress": egress | {"allow_phi": True}}), RUN),
        )
    return RUN


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_governance_section_has_the_three_tiers(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    run = _governed(db)
    html = build_report([RunRef(run, db)], worst=0, governance=True).html
    section = html[html.index('<section id="governance">') :]
    section = section[: section.index("</section>")]
    text = _text(section)
    for heading in ("1. Audit team", "2. Data ethics", "3. Safety simulation"):
        assert heading in text
    assert "t1" in text and "8/8" in text  # every unit labelled by both reviewers
    assert "approve" in text and "audrey" in text and "current" in text
    assert XSS not in section and XSS_ESCAPED in section  # escaped, not executed
    assert "审核通过" in text and "監査済み" in text
    assert "guardian.unsafe_rate" in text and "[0.0138, 0.0641]" in text and "1147" in text
    assert "allow_phi" in text and "api.example" in text and "yes" in text
    assert "20 items scanned" in text and "built-in method" not in text
    assert re.search(r"\(none\)\s+\(no licence recorded\)\s+20", text)
    assert "Audit chain: verifies" in text


def test_agreement_equals_review_status(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    run = _governed(db)
    with Store(db) as store:
        (field,) = task_agreement(store.connection, get_task(store.connection, "t1"))
    html = build_report([RunRef(run, db)], worst=0, governance=True).html
    stats = field.stats
    for key in ("fleiss_kappa", "gwet_ac1", "krippendorff_alpha"):
        entry = stats[key]
        assert isinstance(entry, dict)
        lo, hi = entry["ci95"]
        assert f"{entry['value']:.3f} [{lo:.3f}, {hi:.3f}]" in html


def test_every_report_shows_signoffs_and_their_stale_state(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    run = _governed(db)
    html = build_report([RunRef(run, db)], worst=0).html
    assert "Sign-offs of run" in html and "1. Audit team" not in html
    assert "current" in html
    item = make_open(0, category="ama-1")
    writer = StoreWriter(db)
    writer.put_scores(run, [guardian(item.id, "unsafe", "changed")])
    writer.close()
    html = build_report([RunRef(run, db)], worst=0).html
    assert "STALE: the run changed since it was signed" in html


def test_cli_flag(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    run = _governed(db)
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        app, ["report", run, "--db", str(db), "--governance", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "3. Safety simulation" in out.read_text(encoding="utf-8")


def _record(dialogs: list[str], dialog: Any) -> None:
    dialogs.append(dialog.message)
    dialog.dismiss()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")
def test_governance_renders_in_chromium(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    db = tmp_path / "g.db"
    run = _governed(db)
    path = tmp_path / "r.html"
    path.write_text(
        build_report([RunRef(run, db)], worst=0, governance=True).html, encoding="utf-8"
    )
    dialogs: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("dialog", lambda d: _record(dialogs, d))
            page.goto(path.as_uri(), wait_until="load")
            section = page.locator("#governance")
            assert section.locator("script").count() == 0
            text = section.inner_text()
            assert XSS in text and "审核通过" in text and "監査済み" in text
            assert page.get_by_role("heading", name="Governance", exact=True).count() == 1
            section.screenshot(path=str(tmp_path / "governance.png"))
        finally:
            browser.close()
    assert dialogs == []
