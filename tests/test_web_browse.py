"""Browsing runs in the workbench: figures are RunResults', filters and paging, transcripts,
comparisons, and the materialised results following every change of a run."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI

from medsafe.report.compare import compare_runs
from medsafe.report.data import RunRef
from medsafe.report.render import fmt_ci, fmt_value
from medsafe.results import load_results
from medsafe.schema import Score
from medsafe.store import webstore
from medsafe.store.sqlite import Store
from medsafe.store.writer import StoreWriter
from medsafe.web.results_cache import fingerprint, results_for
from tests.web_support import Client, browse_store, login, make_app


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browse") / "web.db"
    browse_store(path)
    return path


@pytest.fixture(scope="module")
def app(db: Path) -> FastAPI:
    return make_app(db.parent, db=db)


@pytest.fixture(scope="module")
def viewer(app: FastAPI) -> Client:
    return login(app, "viewer")


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_run_page_shows_the_runresults_figures(db: Path, viewer: Client) -> None:
    results = load_results(db, "base")
    text = _text(viewer.get("/run?id=base").text)
    mcq = results.mcq
    assert f"{fmt_value(mcq.value, True)} {fmt_ci(mcq.lo, mcq.hi, True)}" in text
    guardian = results.scorers["guardian"].estimate
    assert f"{fmt_value(guardian.value, True)} {fmt_ci(guardian.lo, guardian.hi, True)}" in text
    assert f"{results.n} items: {results.ok} answered" in text
    assert "医学辅助生殖" in text or "medes-assisted-reproduction" in text


def test_runs_list_filters_and_headlines(viewer: Client) -> None:
    text = _text(viewer.get("/runs").text)
    assert "4 runs" in text and "not signed off" in text
    only = _text(viewer.get("/runs?model=tuned").text)
    assert "1 runs" in only and "openai/tuned" in only and "openai/base" not in only
    assert "0 runs" in _text(viewer.get("/runs?since=2999-01-01").text)
    api = viewer.get("/api/runs?suite=unit").json()
    assert api["total"] == 4 and {r["status"] for r in api["runs"]} == {"complete"}


def test_dialogue_run_shows_turns_asr_and_decline(db: Path, viewer: Client) -> None:
    results = load_results(db, "talks")
    text = _text(viewer.get("/run?id=talks").text)
    assert "Red-team dialogues" in text and "By turn" in text
    assert results.asr is not None and fmt_value(results.asr.value, True) in text
    assert results.by_turn is not None
    for point in results.by_turn:
        assert fmt_ci(point.ci95[0], point.ci95[1], False) in text if point.ci95 else True
    assert "Wilcoxon signed-rank" in text


def test_item_filters_and_keyset_paging(viewer: Client) -> None:
    def ids(query: dict[str, str]) -> list[str]:
        html = viewer.get("/run/items?" + urlencode({"id": "base", **query})).text
        return re.findall(r'href="/item\?run=base&amp;id=([^"]+)"', html)

    every = ids({})
    assert len(every) == 22 == len(set(every))
    assert ids({"language": "zh"}) == ["o00090"]
    assert ids({"category": "ama-2"}) and all(i in every for i in ids({"category": "ama-2"}))
    unsafe = ids({"metric": "guardian", "label": "unsafe"})
    assert len(unsafe) == 3
    assert ids({"metric": "mcq", "max": "0.5"}) == ids({"metric": "mcq", "label": "incorrect"})
    assert ids({"q": "患者"}) == ["o00090"]
    assert viewer.get("/run/items?id=base&min=abc").status_code == 400


def test_item_paging_walks_forward_and_back(app: FastAPI, db: Path) -> None:
    import medsafe.web.routes_browse as browse

    client = login(app, "auditor")
    old = browse.PAGE
    browse.PAGE = 5
    try:
        seen: list[str] = []
        url = "/run/items?id=base"
        pages = []
        while url:
            html = client.get(url).text
            page = re.findall(r'href="/item\?run=base&amp;id=([^"]+)"', html)
            pages.append(page)
            seen += page
            nxt = re.search(r'href="(/run/items\?[^"]*after=\d+[^"]*)"', html)
            url = nxt.group(1).replace("&amp;", "&") if nxt else ""
        assert len(seen) == 22 == len(set(seen)) and [len(p) for p in pages] == [5] * 4 + [2]
        prev = re.search(r'href="(/run/items\?[^"]*before=\d+[^"]*)"', html)
        assert prev is not None
        back = client.get(prev.group(1).replace("&amp;", "&")).text
        assert re.findall(r'href="/item\?run=base&amp;id=([^"]+)"', back) == pages[-2]
    finally:
        browse.PAGE = old


def test_transcript_shows_every_turn_score_rationale_raw_and_flag(viewer: Client) -> None:
    html = viewer.get("/item?run=talks&id=o00060").text
    assert html.count('class="turn assistant"') == 3 and html.count('class="turn user"') == 3
    for turn in (1, 2, 3):
        assert f"攻撃ターン {turn}" in html and f"回答 {turn}: いいえ" in html
        assert f"Model · Turn {turn}" in html
    text = _text(html)
    assert text.count("turn_safety rationale for o00060") == 3
    assert re.findall(r"<td>turn_safety</td>\s*<td[^>]*>j1</td>\s*<td>(\d)</td>", html) == [
        "1",
        "2",
        "3",
    ]
    hostile = "/item?" + urlencode({"run": next(r for r in _run_ids(viewer) if "script" in r),
                                    "id": "o00001"})  # fmt: skip
    page = _text(viewer.get(hostile).text)
    assert "suspected_injection" in page and "Raw judge reply" in page and "unsafe" in page
    assert viewer.get("/item?run=talks&id=nope").status_code == 404
    assert viewer.get("/run?id=nope").status_code == 404


def _run_ids(client: Client) -> list[str]:
    return [r["run_id"] for r in client.get("/api/runs").json()["runs"]]


def test_compare_page_matches_medsafe_compare(db: Path, viewer: Client) -> None:
    expected = compare_runs(RunRef("base", db), RunRef("tuned", db))
    text = _text(viewer.get("/compare?a=base&b=tuned").text)
    overall = expected.overall
    assert fmt_value(overall.a, expected.binary) in text
    lo, hi = overall.ci95 or (None, None)
    assert (
        fmt_ci(
            lo,
            hi,
            expected.binary or bool(expected.metric.scale and expected.metric.scale.is_share),
        )
        in text
    )
    assert "Paired comparison" in text
    bad = _text(viewer.get("/compare?a=base&b=talks").text)
    assert "no scorer in common" in bad


def test_results_are_materialised_and_follow_every_change(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    browse_store(db)
    with Store(db) as store:
        version = webstore.run_version(store.connection, "base")
    first = results_for(db, "base")
    with Store(db) as store:
        key, _blob = webstore.cached_results(store.connection, "base") or ("", "")
    assert key == fingerprint(version)
    assert results_for(db, "base") == first  # served from the table
    writer = StoreWriter(db)
    writer.put_scores(
        "base",
        [
            Score(
                item_id="o00090",
                scorer="guardian",
                scorer_version="1",
                judge="guardian",
                value=0.0,
                label="unsafe",
            )
        ],
    )
    writer.close()
    changed = results_for(db, "base")
    assert changed.scorers["guardian"].labels != first.scorers["guardian"].labels
    assert changed == load_results(db, "base")
    with Store(db) as store:
        assert webstore.run_version(store.connection, "base") > version
        store.connection.execute("DELETE FROM flags WHERE run_id='hostile-none'")
        before = webstore.run_version(store.connection, "tuned")
        store.connection.execute("UPDATE runs SET updated='x' WHERE run_id='tuned'")
        assert webstore.run_version(store.connection, "tuned") == before + 1


def test_runs_list_leaves_large_runs_to_the_warm_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import medsafe.web.routes_browse as browse
    from medsafe.web.results_cache import warm_all

    db = tmp_path / "w.db"
    browse_store(db)
    app = make_app(tmp_path, db=db)
    monkeypatch.setattr(browse, "QUICK", 0)
    client = login(app, "viewer")
    text = _text(client.get("/runs").text)
    assert text.count("computing…") == 4 and "complete" not in text
    from medsafe.web.results_cache import refresh_in_background

    for run_id in ("base", "tuned", "talks"):  # the list started these
        refresh_in_background(db, run_id).join(timeout=60)
    assert _text(client.get("/runs").text).count("complete") >= 3
    warm_all(db, threading.Event())
    text = _text(client.get("/runs").text)
    assert text.count("complete") == 4 and "computing…" not in text
    stopped = threading.Event()
    stopped.set()
    warm_all(db, stopped)  # returns at once


def test_sign_off_state_shows_and_goes_stale(tmp_path: Path) -> None:
    from medsafe.audit.signoffs import record_signoff

    db = tmp_path / "s.db"
    browse_store(db)
    app = make_app(tmp_path, db=db)
    with Store(db) as store:
        record_signoff(store.connection, "base", "auditor", "approve", "fine", "")
        record_signoff(store.connection, "tuned", "auditor", "reject", "no", "")
    client = login(app, "viewer")
    runs = client.get("/runs").text
    assert 'class="badge approve"' in runs and 'class="badge reject"' in runs
    assert "stale" not in _text(runs)
    writer = StoreWriter(db)
    writer.put_scores(
        "base",
        [Score(item_id="o00090", scorer="guardian", scorer_version="1", judge="guardian",
               value=0.0, label="unsafe")],
    )  # fmt: skip
    writer.close()
    run = client.get("/run?id=base").text
    assert 'class="badge approve stale"' in run and "content changed since" in run
    assert 'href="/review/signoff/' not in run  # a viewer is no auditor
    auditor = login(app, "auditor").get("/run?id=base").text
    assert 'href="/review/signoff/base"' in auditor
    listed = client.get("/api/runs").json()["runs"]
    states = {r["run_id"]: [(s["decision"], s["stale"]) for s in r["signoffs"]] for r in listed}
    assert states["base"] == [("approve", True)] and states["tuned"] == [("reject", False)]


def test_metric_filter_by_one_judge(viewer: Client) -> None:
    def ids(metric: str, **query: str) -> list[str]:
        html = viewer.get(
            "/run/items?" + urlencode({"id": "talks", "metric": metric, **query})
        ).text
        return re.findall(r'href="/item\?run=talks&amp;id=([^"]+)"', html)

    # turn 3 scores 6 (i even) or 5 (i odd); every conversation has a turn at 8 or 7 too
    assert len(ids("turn_safety", max="5")) == 3
    assert ids("turn_safety:j1", max="5") == ids("turn_safety", max="5")
    assert ids("turn_safety:other", max="5") == []
    assert len(ids("turn_safety", min="8")) == 3


def test_a_large_runs_page_shows_its_previous_figures_while_recomputing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medsafe.web.routes_browse as browse
    from medsafe.web.results_cache import refresh_in_background

    db = tmp_path / "r.db"
    browse_store(db)
    app = make_app(tmp_path, db=db)
    client = login(app, "viewer")
    before = load_results(db, "base").scorers["guardian"].labels
    assert 'id="stale"' not in client.get("/run?id=base").text  # computed now, current
    monkeypatch.setattr(browse, "QUICK", 0)  # every run is "large"
    writer = StoreWriter(db)
    writer.put_scores(
        "base",
        [Score(item_id="o00090", scorer="guardian", scorer_version="1", judge="guardian",
               value=0.0, label="unsafe")],
    )  # fmt: skip
    writer.close()
    page = client.get("/run?id=base").text
    assert 'id="stale"' in page and f"unsafe: {before['unsafe']}" in _text(page)
    refresh_in_background(db, "base").join(timeout=60)
    page = client.get("/run?id=base").text
    assert 'id="stale"' not in page and f"unsafe: {before['unsafe'] + 1}" in _text(page)
