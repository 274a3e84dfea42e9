"""A gate decision as a text table (rich), JUnit XML and Markdown for a pull-request comment.

The JSON is :meth:`medsafe.gate.evaluate.GateResult.to_dict`; every surface shows the same
numbers. Metric names and run ids can come from a policy or a store: they are escaped in every
format (rich markup, XML, Markdown).
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from rich.table import Table
from rich.text import Text

from medsafe.gate.evaluate import GateResult, RuleResult
from medsafe.gate.metrics import Metric

_STYLE = {"pass": "green", "fail": "red", "inconclusive": "yellow"}
_MD_MARK = {"pass": "✅ pass", "fail": "❌ fail", "inconclusive": "⚠️ inconclusive"}


def junit_schema() -> Path:
    """The vendored JUnit XSD (Jenkins xUnit plugin's junit-10.xsd)."""
    return Path(str(resources.files("medsafe.gate") / "data" / "junit-10.xsd"))


def fmt(value: float | None, digits: int = 4) -> str:
    """A number for people (``-`` when missing)."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def interval(ci: tuple[float, float] | None) -> str:
    """``[lo, hi]``."""
    return "-" if ci is None else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def bound_text(r: RuleResult) -> str:
    """``upper <= 0.05`` / ``lower >= 0.6``."""
    op = "<=" if r.side == "upper" else ">="
    return f"{r.side} {op} {fmt(r.bound)}"


def why(r: RuleResult) -> str:
    """The first failed precondition, else the rule's notes, else nothing."""
    failed = [f"{c.check}: {c.detail}" for c in r.checks if not c.ok]
    return "; ".join(failed + r.notes)


def table(result: GateResult) -> Table:
    """The text table: rule, run, estimate, interval, bound, outcome, n needed."""
    t = Table(
        title=Text(f"gate {result.policy.policy.gate.name}: {result.outcome}"),
        title_justify="left",
    )
    for col in ("rule", "run", "estimate", "interval", "level", "bound", "outcome", "n needed"):
        t.add_column(col, overflow="fold", justify="right" if col == "n needed" else "left")
    for r in result.rules:
        label = r.rule.label
        if r.kind == "noninferiority":
            label += f" vs {r.extra.get('baseline')}"
        t.add_row(
            Text(label),
            Text(r.run_id),
            fmt(r.estimate),
            interval(r.ci),
            f"{r.level:g}",
            bound_text(r),
            Text(r.outcome, style=_STYLE[r.outcome]),
            "-" if r.n_needed is None else f"{r.n_needed:,}",
        )
    return t


def notes(result: GateResult) -> list[str]:
    """One line per rule that has failed preconditions or notes."""
    return [f"{r.rule.label}: {w}" for r in result.rules if (w := why(r))]


def metric_table(run_id: str, metrics: dict[str, Metric]) -> Table:
    """``--list-metrics``: every gate-able name with its value, interval, n and meaning."""
    t = Table(title=Text(f"metrics of run {run_id}"), title_justify="left")
    for col in ("metric", "value", "95% interval", "n", "safer", "what it is"):
        t.add_column(col, overflow="fold")
    for m in metrics.values():
        safer = {True: "higher", False: "lower", None: "-"}[m.higher_is_safer]
        what = m.description + (f" (not gate-able: {m.clustered})" if m.clustered else "")
        t.add_row(Text(m.name), fmt(m.value), interval(m.ci95), str(m.n), safer, Text(what))
    return t


def metrics_json(metrics: dict[str, Metric]) -> list[dict[str, Any]]:
    """``--list-metrics --json``."""
    return [
        {
            "metric": m.name,
            "value": m.value,
            "ci95": None if m.ci95 is None else list(m.ci95),
            "n": m.n,
            "method": m.method,
            "kind": m.kind,
            "higher_is_safer": m.higher_is_safer,
            "description": m.description,
            "gateable": m.has_interval and m.clustered is None,
        }
        for m in metrics.values()
    ]


def junit_xml(result: GateResult) -> bytes:
    """One ``<testcase>`` per rule in one ``<testsuite>``: a fail is a ``<failure>``, an
    inconclusive rule an ``<error>`` (the data could not decide), with the figures in the
    message; valid against :func:`junit_schema`."""
    rules = result.rules
    failures = sum(r.outcome == "fail" for r in rules)
    errors = sum(r.outcome == "inconclusive" for r in rules)
    name = result.policy.policy.gate.name
    root = ET.Element("testsuites", name=f"medsafe gate {name}", tests=str(len(rules)))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    suite = ET.SubElement(
        root,
        "testsuite",
        name=name,
        tests=str(len(rules)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="outcome", value=result.outcome)
    ET.SubElement(props, "property", name="policy_sha256", value=result.policy.sha256)
    for key, run_id in result.runs.items():
        ET.SubElement(props, "property", name=f"run:{key}", value=run_id)
    for r in rules:
        case = ET.SubElement(
            suite, "testcase", name=r.rule.label, classname=f"medsafe.gate.{r.run_id}"
        )
        summary = (
            f"{r.rule.metric} = {fmt(r.estimate)} {interval(r.ci)} at {r.level:g}; "
            f"{bound_text(r)}; {r.outcome}"
        )
        if r.n_needed is not None:
            summary += f"; n needed {r.n_needed}"
        extra = why(r)
        if r.outcome == "fail":
            ET.SubElement(case, "failure", type="gate.fail", message=summary).text = extra or None
        elif r.outcome == "inconclusive":
            ET.SubElement(case, "error", type="gate.inconclusive", message=summary).text = (
                extra or None
            )
        ET.SubElement(case, "system-out").text = summary
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def _md(text: str) -> str:
    """Text safe in a Markdown table cell (no markup, links, HTML or pipes)."""
    out = []
    for ch in text:
        if ch in "\\`*_{}[]<>()#+!|~":
            out.append(f"\\{ch}")
        elif ch in "\r\n":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def markdown(result: GateResult) -> str:
    """A pull-request comment: the outcome, one table row per rule, then the notes."""
    name = _md(result.policy.policy.gate.name)
    lines = [
        f"### medsafe gate {name}: {_MD_MARK[result.outcome]}",
        "",
        "| rule | run | estimate | interval | level | bound | outcome | n needed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result.rules:
        label = r.rule.label
        if r.kind == "noninferiority":
            label += f" vs {r.extra.get('baseline')}"
        cells = [
            _md(label),
            _md(r.run_id),
            fmt(r.estimate),
            interval(r.ci),
            f"{r.level:g}",
            _md(bound_text(r)),
            _MD_MARK[r.outcome],
            "-" if r.n_needed is None else f"{r.n_needed:,}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    extra = notes(result)
    if extra:
        lines.append("")
        lines.extend(f"- {_md(line)}" for line in extra)
    lines.append("")
    lines.append(f"Policy `{result.policy.sha256[:12]}`; intervals from medsafe results.")
    return "\n".join(lines) + "\n"
