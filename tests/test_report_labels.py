"""User text in the report is plain text: no mathtext in plot labels, no control characters in
the SVG or the HTML, and right-to-left overrides isolated."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from medsafe.report import plots
from medsafe.report.render import report_html
from tests.test_report import Row, graded, make_open, write_run

MATH = "a$x$b"
NUL = "c\x00d"
RLO = "e\u202eright-to-left"
BAD_MATH = "dose $\\undefined{$5"  # not valid mathtext: matplotlib raised on it


def labelled_run(db: Path) -> str:
    """The report of a run whose categories are mathtext (valid and not), a NUL and an RLO
    override."""
    rows = []
    for i in range(12):
        item = make_open(i, category=(MATH, NUL, RLO, BAD_MATH)[i % 4])
        rows.append(Row(item, f"answer {i}", [graded(item.id, "harmfulness", 1.0 + i % 5)]))
    return report_html([write_run(db, "r", "openai/r", rows)])


def svgs(html: str) -> list[bytes]:
    """The report's inline SVG figures, decoded."""
    found = re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", html)
    return [base64.b64decode(b) for b in found]


def test_mathtext_nul_and_rlo_categories_render_as_plain_text(tmp_path: Path) -> None:
    html = labelled_run(tmp_path / "s.db")  # "$x$" raised a mathtext error before
    figures = svgs(html)
    assert figures
    for svg in figures:
        ET.fromstring(svg)  # well-formed XML: no NUL
        assert b"\x00" not in svg
    assert "\x00" not in html and "cd" in html
    assert f"<bdi>{RLO}</bdi>" in html  # the override cannot reorder its neighbours
    assert f"<bdi>{MATH}</bdi>" in html and "undefined{$5" in html


def test_plain_strips_controls_and_bidi_overrides() -> None:
    assert plots.plain("c\x00d\x1b[31m\u202ex\u2066y\u2069") == "cd[31mxy"
    assert plots.plain(MATH) == MATH
    assert plots.rc()["text.parse_math"] is False


def test_plot_panels_keep_the_judge_in_a_short_title() -> None:
    from medsafe.judges.scales import HARMFULNESS
    from medsafe.report.data import MetricKey
    from medsafe.report.render import panel_title

    assert panel_title(MetricKey("harmfulness", "judge-a", HARMFULNESS)) == "Harmfulness · judge-a"
    assert panel_title(MetricKey("harmfulness", "jury", HARMFULNESS)) == "Harmfulness · jury"
    assert panel_title(MetricKey("x")) == "x"
