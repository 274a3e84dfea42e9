"""Report figures (matplotlib, no pyplot state) as self-contained SVG data URIs.

Text is drawn as paths (``svg.fonttype = "path"``), so a viewer needs no fonts; labels use Noto
Sans CJK (Debian ``fonts-noto-cjk``) so Chinese and Japanese category names render.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

log = logging.getLogger(__name__)

CJK_FAMILIES = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK KR")
"""Noto CJK faces, preferred in this order (each holds every CJK glyph of the collection)."""
PALETTE = ("#2f6db5", "#d1603d", "#3a9a5b", "#8e5ab5", "#b59a2f", "#4aa3b5", "#b54a7d")


@cache
def cjk_family() -> str | None:
    """The Noto Sans CJK family matplotlib will use (registering the system files if needed)."""
    from matplotlib import font_manager

    def known() -> set[str]:
        return {f.name for f in font_manager.fontManager.ttflist}

    names = known()
    if not any(name in names for name in CJK_FAMILIES):
        for path in font_manager.findSystemFonts():
            if "NotoSansCJK" in path or "NotoSerifCJK" in path:
                font_manager.fontManager.addfont(path)
        names = known()
    found = next((name for name in CJK_FAMILIES if name in names), None)
    if found is None:
        log.warning("no Noto Sans CJK font found: install fonts-noto-cjk for zh/ja labels")
    return found


def rc() -> dict[Any, Any]:
    """matplotlib settings for every report figure."""
    family = cjk_family()
    return {
        "font.family": "sans-serif",
        "font.sans-serif": [*([family] if family else []), "DejaVu Sans"],
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "svg.fonttype": "path",
        "svg.hashsalt": "medsafe",
        "axes.unicode_minus": False,
        # labels are user text: "$x$" is a dollar sign and an x, never mathtext or TeX
        "text.usetex": False,
        "text.parse_math": False,
    }


@contextmanager
def _figure(
    width: float, height: float, layout: Literal["constrained"] | None = "constrained"
) -> Iterator[Any]:
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(rc()):
        yield Figure(figsize=(width, height), layout=layout)


ImageFormat = Literal["svg", "png"]
_FORMAT: ContextVar[ImageFormat] = ContextVar("medsafe_report_image_format", default="svg")
PNG_DPI = 200


@contextmanager
def image_format(fmt: ImageFormat) -> Iterator[None]:
    """Figures drawn inside this block are encoded as ``fmt`` (SVG by default; PNG draws much
    faster in WeasyPrint, whose SVG renderer is slow on text drawn as paths)."""
    token = _FORMAT.set(fmt)
    try:
        yield
    finally:
        _FORMAT.reset(token)


def _data_uri(fig: Any) -> str:
    buf = io.BytesIO()
    if _FORMAT.get() == "png":
        fig.savefig(buf, format="png", dpi=PNG_DPI, metadata={"Software": None})
        mime = "image/png"
    else:
        fig.savefig(buf, format="svg", metadata={"Date": None})
        mime = "image/svg+xml"
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def plain(text: str) -> str:
    """A label as plain text for a figure: control characters (NUL, C0/C1) and bidi
    embedding, override and isolate controls (U+202A-E, U+2066-9) left out, so the SVG stays
    well-formed and no label reorders its neighbours."""
    return "".join(ch for ch in text if not _CONTROL.match(ch))


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _clip(text: str, width: int = 34) -> str:
    text = plain(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _err(mean: float, lo: float | None, hi: float | None) -> tuple[float, float]:
    if lo is None or hi is None:
        return (0.0, 0.0)
    return (max(0.0, mean - lo), max(0.0, hi - mean))


@dataclass(frozen=True)
class Series:
    """One run's values over a list of categories or turns (None where it has none)."""

    name: str
    mean: Sequence[float | None]
    lo: Sequence[float | None]
    hi: Sequence[float | None]


@dataclass(frozen=True)
class Panel:
    """One metric's bars over the categories of a framework."""

    title: str
    series: Sequence[Series]
    percent: bool
    axis: tuple[float, float] | None = None
    """The scale's range (bars start at its low end); None: fitted to the values."""
    direction: str = ""
    """``higher is safer`` or ``lower is safer``, shown under the axis."""


def _text_width(text: str) -> float:
    """Approximate width in inches of ``text`` at 8 pt (CJK glyphs are twice as wide)."""
    return sum(0.11 if ord(ch) > 0x2E80 else 0.058 for ch in text)


PAGE_WIDTH = 7.4
"""Inches of figure width that fit an A4 page with the report's margins."""


def _bar_panel(ax: Any, panel: Panel, n_rows: int, n_runs: int) -> None:
    bar = 0.8 / n_runs
    scale = 100.0 if panel.percent else 1.0
    base = 0.0 if panel.percent or panel.axis is None else panel.axis[0]
    for j, s in enumerate(panel.series):
        rows = [r for r, m in enumerate(s.mean) if m is not None]
        ys = [r - 0.4 + bar * (j + 0.5) for r in rows]
        xs = [scale * (s.mean[r] or 0.0) - base for r in rows]
        color = PALETTE[j % len(PALETTE)]
        ax.barh(ys, xs, left=base, height=bar * 0.88, color=color, label=plain(s.name))
        ci = [(y, s.lo[r], s.hi[r]) for y, r in zip(ys, rows, strict=True)]
        ci = [c for c in ci if c[1] is not None and c[2] is not None]
        if ci:
            ax.hlines(
                [c[0] for c in ci],
                [scale * (c[1] or 0.0) for c in ci],
                [scale * (c[2] or 0.0) for c in ci],
                color="#222", lw=0.9,
            )  # fmt: skip
    ax.set_title(_clip(panel.title, 30), fontsize=8.5)
    if panel.percent:
        ax.set_xlim(0, 100)
        ax.set_xticks([0, 25, 50, 75, 100])
    else:
        if panel.axis is not None:
            ax.set_xlim(*panel.axis)
        ax.locator_params(axis="x", nbins=4)
    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.set_yticks([])
    label = "% (95% CI)" if panel.percent else "mean (95% CI)"
    ax.set_xlabel(f"{label}; {panel.direction}" if panel.direction else label, fontsize=7.5)
    ax.tick_params(labelsize=7.5)
    ax.grid(axis="x", color="#ddd", lw=0.5)
    ax.set_axisbelow(True)


def category_bars(categories: Sequence[str], panels: Sequence[Panel], *, columns: int = 3) -> str:
    """Horizontal bars with 95% CI whiskers: one row per category, one bar per run, one panel
    per metric, panels wrapped ``columns`` to a row so the figure fits a page."""
    n_runs = max(len(p.series) for p in panels)
    labels = [_clip(c) for c in categories]
    label_w = max(_text_width(t) for t in labels) + 0.25
    ncols = min(columns, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    width = min(PAGE_WIDTH, label_w + 2.0 * ncols)
    legend_h = 0.3 if n_runs > 1 else 0.0
    row_h = 0.85 + len(categories) * max(0.2, 0.13 * n_runs)
    height = nrows * row_h + legend_h
    top, bottom, gap = 0.3 + legend_h, 0.5, 0.85  # inches
    axes_h = (height - top - bottom - (nrows - 1) * gap) / nrows
    with _figure(width, height, layout=None) as fig:
        fig.subplots_adjust(
            left=label_w / width, right=1 - 0.2 / width, top=1 - top / height,
            bottom=bottom / height, wspace=0.1, hspace=gap / axes_h,
        )  # fmt: skip
        grid = fig.subplots(nrows, ncols, squeeze=False)
        for k, ax in enumerate(grid.flat):
            if k >= len(panels):
                ax.set_visible(False)
                continue
            _bar_panel(ax, panels[k], len(categories), n_runs)
            if k % ncols == 0:
                ax.set_yticks(range(len(categories)), labels)
        if n_runs > 1:
            handles, names = grid[0][0].get_legend_handles_labels()
            fig.legend(handles, names, loc="upper center", ncols=min(n_runs, 4), fontsize=7,
                       frameon=False)  # fmt: skip
        return _data_uri(fig)


@dataclass(frozen=True)
class Point:
    """One model on the ethics-vs-safety plane, with 95% CIs."""

    name: str
    x: float
    x_lo: float | None
    x_hi: float | None
    y: float
    y_lo: float | None
    y_hi: float | None


def ethics_safety(points: Sequence[Point], x_label: str, y_label: str) -> str:
    """One point per model: ethics score (x) against safety score (y), both in %."""
    with _figure(5.2, 4.2) as fig:
        ax = fig.subplots()
        for j, p in enumerate(points):
            xe, ye = _err(p.x, p.x_lo, p.x_hi), _err(p.y, p.y_lo, p.y_hi)
            ax.errorbar(
                [100 * p.x],
                [100 * p.y],
                xerr=[[100 * xe[0]], [100 * xe[1]]],
                yerr=[[100 * ye[0]], [100 * ye[1]]],
                fmt="o",
                color=PALETTE[j % len(PALETTE)],
                capsize=3,
                label=plain(p.name),
            )
            ax.annotate(
                _clip(p.name, 28), (100 * p.x, 100 * p.y), xytext=(5, 5),
                textcoords="offset points", fontsize=8,
            )  # fmt: skip
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_xlabel(plain(f"{x_label} (%)"))
        ax.set_ylabel(plain(f"{y_label} (%)"))
        ax.grid(color="#ddd", lw=0.5)
        return _data_uri(fig)


def turn_curves(
    turns: Sequence[int],
    series: Sequence[Series],
    y_label: str,
    axis: tuple[float, float] | None = None,
) -> str:
    """Mean per turn with a 95% CI band, one line per run (y axis: the scale's range)."""
    with _figure(6.0, 3.4) as fig:
        ax = fig.subplots()
        for j, s in enumerate(series):
            color = PALETTE[j % len(PALETTE)]
            pts = [
                (t, m, lo, hi)
                for t, m, lo, hi in zip(turns, s.mean, s.lo, s.hi, strict=True)
                if m is not None
            ]
            xs = [p[0] for p in pts]
            ax.plot(xs, [p[1] for p in pts], marker="o", color=color, label=plain(s.name))
            band = [(p[0], p[2], p[3]) for p in pts if p[2] is not None and p[3] is not None]
            if band:
                ax.fill_between(
                    [b[0] for b in band],
                    [b[1] for b in band],
                    [b[2] for b in band],
                    color=color,
                    alpha=0.18,
                    lw=0,
                )
        ax.set_xticks(list(turns))
        if axis is not None:
            ax.set_ylim(*axis)
        ax.set_xlabel("turn")
        ax.set_ylabel(plain(y_label))
        ax.grid(color="#ddd", lw=0.5)
        if len(series) > 1:
            ax.legend(fontsize=7)
        return _data_uri(fig)


def delta_heatmap(
    rows: Sequence[str],
    cols: Sequence[str],
    deltas: Sequence[Sequence[float | None]],
    significant: Sequence[Sequence[bool]],
    title: str,
    percent: bool,
    higher_is_better: bool = True,
) -> str:
    """Category x model heatmap of deltas against the baseline; ``*`` marks adjusted p < 0.05.

    Improvements are blue and deteriorations red, whichever direction the metric runs."""
    import numpy as np

    scale = 100.0 if percent else 1.0
    grid = np.array(
        [[np.nan if v is None else v * scale for v in row] for row in deltas], dtype=float
    )
    finite = grid[np.isfinite(grid)]
    bound = float(np.max(np.abs(finite))) if finite.size else 1.0
    bound = bound if bound > 0 else 1.0
    with _figure(2.8 + 1.1 * len(cols), 0.9 + 0.3 * len(rows)) as fig:
        ax = fig.subplots()
        image = ax.imshow(
            grid,
            cmap="RdBu" if higher_is_better else "RdBu_r",
            vmin=-bound,
            vmax=bound,
            aspect="auto",
        )
        ax.set_xticks(range(len(cols)), [_clip(c, 18) for c in cols], rotation=20, ha="right")
        ax.set_yticks(range(len(rows)), [_clip(r) for r in rows])
        for i, row in enumerate(grid):
            for j, value in enumerate(row):
                if math.isfinite(value):
                    mark = "*" if significant[i][j] else ""
                    dark = abs(value) > 0.6 * bound
                    ax.text(
                        j, i, f"{value:+.1f}{mark}" if percent else f"{value:+.2f}{mark}",
                        ha="center", va="center", fontsize=7, color="white" if dark else "black",
                    )  # fmt: skip
        ax.set_title(plain(title), fontsize=9)
        ax.spines[:].set_visible(False)
        fig.colorbar(image, ax=ax, label="Δ (pp)" if percent else "Δ", shrink=0.8)
        return _data_uri(fig)
