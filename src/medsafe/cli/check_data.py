"""``medsafe check-data``: personal identifiers, licences and redaction (registered in
medsafe.cli)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from medsafe.cli.dboption import db_location
from medsafe.errors import MedsafeError
from medsafe.exits import fail
from medsafe.formatting import emit_json

_err = Console(stderr=True, highlight=False)
_out = Console(highlight=False)

FOUND_IDENTIFIERS = 1
"""Exit status when identifiers (any type but ``date``) were found."""
SHOWN = 50
"""Findings listed in the text output (all of them are in --json)."""


def _mask(text: str) -> str:
    """A finding as shown: its first and last character, the rest masked."""
    if len(text) <= 2:
        return "*" * len(text)
    return text[0] + "*" * (len(text) - 2) + text[-1]


def _licence_lines(licenses: dict[str, int], sources: dict[str, int]) -> list[str]:
    if not licenses:
        return []
    named = ", ".join(f"{name} ({n})" for name, n in sorted(licenses.items()) if name)
    lines = [f"licences: {named or 'none'}"]
    missing = licenses.get("", 0)
    if missing:
        lines.append(f"warning: {missing} items have no license")
    missing_source = sources.get("", 0)
    if missing_source:
        lines.append(f"warning: {missing_source} items have no source")
    return lines


def _evaluate(path: Path, as_json: bool, config: Any) -> None:
    from medsafe.dataethics.evaluate import evaluate, load_labelled

    data = evaluate(load_labelled(path), config).to_dict()
    if as_json:
        emit_json(data)
        return

    def pct(block: dict[str, Any], name: str) -> str:
        value, ci = block[name], block[f"{name}_ci"]
        if value is None:
            return "-"
        return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"

    lines = [
        f"{data['snippets']} snippets ({data['negatives']} negatives) from {path.name}",
        "",
        "| type | lang | TP | FP | FN | precision [95% CI] | recall [95% CI] |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for key, block in data["by_type_language"].items():
        kind, lang = key.split("/")
        rows.append((kind, lang, block))
    for kind, block in data["by_type"].items():
        rows.append((kind, "all", block))
    rows.sort(key=lambda r: (r[0], r[1] == "all", r[1]))
    for lang, block in data["by_language"].items():
        rows.append(("all types", lang, block))
    rows.append(("structured (ID, phone, e-mail)", "all", data["structured"]))
    rows.append(("**all types**", "**all**", data["overall"]))
    for kind, lang, block in rows:
        lines.append(
            f"| {kind} | {lang} | {block['tp']} | {block['fp']} | {block['fn']} | "
            f"{pct(block, 'precision')} | {pct(block, 'recall')} |"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    for error in data["errors"]:
        sys.stderr.write(error + "\n")


def check_data_command(
    target: Annotated[
        str | None,
        typer.Argument(
            help="A file (text, JSONL, CSV), a suite (bundled name, directory) or run:RUN_ID."
        ),
    ] = None,
    db: Annotated[
        Path, typer.Option("--db", help="Store of run:RUN_ID.", callback=db_location)
    ] = Path("medsafe.db"),
    fmt: Annotated[
        str | None, typer.Option("--format", help="Read the file as text, jsonl, csv or suite.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    redact: Annotated[
        bool, typer.Option("--redact", help="Write a copy with typed placeholders (needs -o).")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Redacted copy; - for standard output.")
    ] = None,
    keep_dates: Annotated[
        bool,
        typer.Option(
            "--keep-dates/--remove-dates",
            help="--redact: keep dates that are not birth dates (default: remove them).",
        ),
    ] = False,
    mrn_pattern: Annotated[
        list[str] | None,
        typer.Option(
            "--mrn-pattern",
            help="Regular expression of a medical-record number (repeatable; group 1 = number).",
        ),
    ] = None,
    lang: Annotated[
        str | None, typer.Option("--lang", help="zh, ja or en (default: guessed per text).")
    ] = None,
    evaluate: Annotated[
        Path | None,
        typer.Option("--evaluate", help="Labelled JSONL set: print precision and recall."),
    ] = None,
    ner: Annotated[
        bool,
        typer.Option("--ner", help="Add GiNZA person names in Japanese text (medsafe[ner])."),
    ] = False,
) -> None:
    """Find personal identifiers (PHI/PII) in zh/ja/en data, report suites without a licence,
    write a redacted copy. Exit 0: none found; 1: identifiers found; 2: bad input."""
    import re

    from medsafe.dataethics.scan import ScanConfig

    if lang is not None and lang not in ("zh", "ja", "en"):
        raise fail(f"--lang must be zh, ja or en, not {lang!r}")
    for pattern in mrn_pattern or ():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise fail(f"--mrn-pattern {pattern!r} is not a regular expression: {exc}") from None
    config = ScanConfig(tuple(mrn_pattern or ()), lang, ner)
    try:
        if evaluate is not None:
            _evaluate(evaluate, as_json, config)
            return
        if target is None:
            raise fail("give a FILE, a suite or run:RUN_ID (or --evaluate LABELLED.jsonl)")
        if redact and output is None:
            raise fail("--redact needs -o OUT")
        if fmt is not None and fmt not in ("text", "jsonl", "csv", "suite"):
            raise fail(f"--format must be text, jsonl, csv or suite, not {fmt!r}")
        _check(target, db, fmt, as_json, config, output if redact else None, keep_dates)
    except MedsafeError as exc:
        raise fail(exc) from None


def _check(
    target: str,
    db: Path,
    fmt: str | None,
    as_json: bool,
    config: Any,
    output: Path | None,
    keep_dates: bool,
) -> None:
    from medsafe.dataethics.redaction import Redactor
    from medsafe.dataethics.scan import scan_records
    from medsafe.dataethics.sources import open_input

    source = open_input(target, db=db, kind=fmt)  # type: ignore[arg-type]
    findings = list(scan_records(source.fields(), config))
    licenses, sources = dict(source.licenses), dict(source.sources)
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.type] = counts.get(finding.type, 0) + 1
    if output is not None:
        from medsafe.dataethics.rewrite import write_redacted
        from medsafe.outputs import check_output, open_text, stderr_note

        check_output(output)
        redactor = Redactor(keep_dates=keep_dates)
        with open_text(output, stderr_note) as handle:
            written = write_redacted(source, handle, redactor, config)
        replaced = ", ".join(f"{k} {n}" for k, n in sorted(redactor.counts.items())) or "nothing"
        _err.print(
            Text(f"wrote {written} redacted records to {output} (distinct values: {replaced})")
        )
    if as_json:  # exactly the documented shape; the licences go to stderr
        emit_json({"findings": [f.location() for f in findings]})
        for line in _licence_lines(licenses, sources):
            _err.print(Text(line))
    else:
        _print(
            target,
            findings,
            counts,
            licenses,
            sources,
            quiet=output is not None and str(output) == "-",
        )
    if any(f.type != "date" for f in findings):
        raise typer.Exit(FOUND_IDENTIFIERS)


def _print(
    target: str,
    findings: list[Any],
    counts: dict[str, int],
    licenses: dict[str, int],
    sources: dict[str, int],
    *,
    quiet: bool,
) -> None:
    console = _err if quiet else _out
    if findings and not quiet:
        table = Table(title=Text(f"findings in {target}"), title_justify="left")
        for column in ("line", "item", "field", "type", "span", "text (masked)"):
            table.add_column(column)
        for f in findings[:SHOWN]:
            table.add_row(
                *(
                    Text(str(cell))
                    for cell in (
                        "-" if f.line is None else f.line,
                        f.item_id or "-",
                        f.field or "-",
                        f.type,
                        f"{f.start}-{f.end}",
                        _mask(f.text),
                    )
                )
            )
        console.print(table)
        if len(findings) > SHOWN:
            console.print(Text(f"... and {len(findings) - SHOWN} more (all of them with --json)"))
    if findings:
        summary = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
        console.print(Text(f"{len(findings)} findings: {summary}"))
    else:
        console.print(Text(f"no personal identifiers found in {target}"))
    for line in _licence_lines(licenses, sources):
        console.print(Text(line))
