"""``medsafe align``: training data from runs (build), LoRA training (train), the paired
before/after verdict (verdict). Registered on the main typer app in :mod:`medsafe.cli`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from medsafe.errors import MedsafeError
from medsafe.exits import fail
from medsafe.formatting import emit_json

align_app = typer.Typer(
    help="Alignment: SFT/DPO/KTO data from runs, LoRA training, before/after verdict.",
    no_args_is_help=True,
)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, highlight=False)

DbOption = Annotated[Path, typer.Option("--db", help="Results store (SQLite).")]


@align_app.command("build")
def build_command(
    runs: Annotated[list[str], typer.Argument(help="Runs whose answers become training data.")],
    fmt: Annotated[str, typer.Option("--format", help="sft | dpo | kto (TRL formats).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="FILE.jsonl or FILE.parquet.")],
    db: DbOption = Path("medsafe.db"),
    scorer: Annotated[
        str, typer.Option(help="Safety scorer giving verdicts (1 safe, 0 unsafe).")
    ] = "guardian",
    chosen: Annotated[
        str, typer.Option(help="Chosen-answer sources in priority order: human,reference,target.")
    ] = "human,reference,target",
    eval_suite: Annotated[
        list[str] | None,
        typer.Option("--eval-suite", help="A suite evaluated later (repeat): never trained on."),
    ] = None,
    allow_leak: Annotated[
        bool, typer.Option("--allow-leak", help="Train on evaluation items anyway.")
    ] = False,
    near_dup: Annotated[
        float, typer.Option(help="MinHash Jaccard at which a prompt duplicates an eval prompt.")
    ] = 0.6,
    paraphrase: Annotated[
        float | None,
        typer.Option(help="Also drop paraphrases at this e5 cosine (slower; off by default)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Build SFT/DPO/KTO records from runs (refuses evaluation items; exit 2 names them)."""
    from medsafe.align.build import BuildOptions, build, manifest_path
    from medsafe.align.formats import FORMATS
    from medsafe.align.leakage import EvalSet
    from medsafe.suites import load_items

    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    try:
        suites = list(eval_suite or [])
        items = [item for ref in suites for item in load_items(ref)]
        opts = BuildOptions(
            runs=runs,
            db=db,
            fmt=fmt,  # checked against FORMATS above
            out=output,
            scorer=scorer,
            sources=[s.strip() for s in chosen.split(",") if s.strip()],
            evals=EvalSet.of(items, suites),
            eval_suites=suites,
            allow_leak=allow_leak,
            near_dup_threshold=near_dup,
            paraphrase_threshold=paraphrase,
        )
        if not db.is_file():
            raise fail(f"{db}: no such store")
        report = build(opts)
    except MedsafeError as exc:
        raise fail(exc) from None
    if json_output:
        emit_json({"output": str(output), **report.counts, "chosen_sources": report.chosen_sources})
        return
    c = report.counts
    out.print(
        Text(
            f"{c['records']} {fmt} records -> {output} (manifest {manifest_path(output).name}); "
            f"{c['items']} items, {c['safe']} safe / {c['unsafe']} unsafe answers, "
            f"{c['no_verdict']} without a verdict"
        )
    )
    if report.leaked:
        err.print(Text(f"note: --allow-leak: {len(report.leaked)} evaluation items included"))
    for d in report.dropped[:20]:
        err.print(Text(f"dropped {d['item_id']}: {d['reason']} ({d['eval_item_id']})"))
    if len(report.dropped) > 20:
        err.print(Text(f"... and {len(report.dropped) - 20} more (listed in the manifest)"))
