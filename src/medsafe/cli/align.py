"""``medsafe align``: training data from runs (build), LoRA training (train), the paired
before/after verdict (verdict). Registered on the main typer app in :mod:`medsafe.cli`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from medsafe.cli.dboption import DB_HELP, db_location
from medsafe.errors import MedsafeError
from medsafe.exits import fail
from medsafe.formatting import emit_json

align_app = typer.Typer(
    help="Alignment: SFT/DPO/KTO data from runs, LoRA training, before/after verdict.",
    no_args_is_help=True,
)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, highlight=False)

DbOption = Annotated[Path, typer.Option("--db", help=DB_HELP, callback=db_location)]


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
        str,
        typer.Option(help="Chosen sources in priority order: human,reference,target[,teacher]."),
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
    ] = 0.5,
    paraphrase: Annotated[
        float | None,
        typer.Option(help="Also drop paraphrases at this e5 cosine (slower; off by default)."),
    ] = None,
    teacher: Annotated[
        str | None,
        typer.Option(help="Teacher MODEL answering items with no chosen answer (judged safe)."),
    ] = None,
    teacher_tries: Annotated[int, typer.Option(help="Teacher answers tried per item.")] = 3,
    teacher_base_url: Annotated[
        str | None, typer.Option(help="Base URL of an openai/ teacher.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Build SFT/DPO/KTO records from runs (refuses evaluation items; exit 2 names them)."""
    from medsafe.align.build import BuildOptions, build, manifest_path
    from medsafe.align.formats import FORMATS
    from medsafe.align.leakage import EvalSet
    from medsafe.align.teacher import TeacherOptions
    from medsafe.suites import load_items

    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    try:
        suites = list(eval_suite or [])
        sources = [s.strip() for s in chosen.split(",") if s.strip()]
        if teacher is not None and "teacher" not in sources:
            sources.append("teacher")
        items = [item for ref in suites for item in load_items(ref)]
        opts = BuildOptions(
            runs=runs,
            db=db,
            fmt=fmt,  # checked against FORMATS above
            out=output,
            scorer=scorer,
            sources=sources,
            teacher=None
            if teacher is None
            else TeacherOptions(
                model=teacher, tries=teacher_tries, scorer=scorer, base_url=teacher_base_url
            ),
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
    if report.teacher is not None:
        t = report.teacher
        err.print(
            Text(
                f"teacher: {len(t.answers)} answers accepted, {len(t.rejected)} items never "
                f"accepted in {teacher_tries} tries, {t.failures} failed calls"
            )
        )
    if report.leaked:
        err.print(Text(f"note: --allow-leak: {len(report.leaked)} evaluation items included"))
    for d in report.dropped[:20]:
        err.print(Text(f"dropped {d['item_id']}: {d['reason']} ({d['eval_item_id']})"))
    if len(report.dropped) > 20:
        err.print(Text(f"... and {len(report.dropped) - 20} more (listed in the manifest)"))


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _ci(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


@align_app.command("verdict")
def verdict_command(
    before: Annotated[str, typer.Argument(help="The run before training (RUN or RUN@STORE).")],
    after: Annotated[str, typer.Argument(help="The run after training, on the same suite.")],
    db: DbOption = Path("medsafe.db"),
    metric: Annotated[
        str | None, typer.Option(help="Safety metric (scorer or scorer:judge; default as compare).")
    ] = None,
    control: Annotated[
        tuple[str, str] | None,
        typer.Option(help="BEFORE AFTER runs on the benign control suite (over-refusal)."),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write the dual-axis figure here (SVG), when there is one.")
    ] = None,
    refusal_scorer: Annotated[
        str, typer.Option(help="Scorer whose 'refusal' label marks an over-refusal.")
    ] = "guardian",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Paired before/after verdict: safety (McNemar/Wilcoxon, Holm), over-refusal, dual axis."""
    from medsafe.align.verdict import dual_axis_svg, verdict, write_svg
    from medsafe.cli.report import comparison_table
    from medsafe.report.data import parse_run_ref

    try:
        refs = (parse_run_ref(before, db), parse_run_ref(after, db))
        controls = (
            (parse_run_ref(control[0], db), parse_run_ref(control[1], db)) if control else None
        )
        result = verdict(*refs, metric=metric, control=controls, refusal_scorer=refusal_scorer)
        if plot is not None:
            if not result.dual:
                raise fail("--plot: the items' categories do not span two taxonomy frameworks")
            write_svg(plot, dual_axis_svg(result.dual))
    except MedsafeError as exc:
        raise fail(exc) from None
    if json_output:
        emit_json(result.to_dict())
        return
    out.print(comparison_table(result.safety))
    refusal = result.over_refusal
    if refusal is not None:
        p = refusal.paired
        out.print(
            Text(
                f"over-refusal on the control set: {_pct(refusal.before.value)}"
                f"{_ci(refusal.before.ci95)} (n={refusal.before.n}) -> "
                f"{_pct(refusal.after.value)}{_ci(refusal.after.ci95)} (n={refusal.after.n}); "
                f"paired delta {_pct(p.delta)}{_ci(p.ci95)}, {p.test} p="
                + ("n/a" if p.p is None else f"{p.p:.3g}")
                + f" ({p.n_pairs} pairs)"
            )
        )
    for g in result.dual:
        out.print(
            Text(
                f"{g.framework} {g.run}: {_pct(g.estimate.value)}{_ci(g.estimate.ci95)} "
                f"(n={g.estimate.n})"
            )
        )
    if plot is not None:
        err.print(Text(f"dual-axis figure -> {plot}"))


@align_app.command("train")
def train_command(
    method: Annotated[str, typer.Option(help="sft | dpo (TRL's SFTTrainer / DPOTrainer).")],
    base: Annotated[Path, typer.Option(help="Checkpoint directory or .gguf file.")],
    data: Annotated[Path, typer.Option(help="Records from medsafe align build (.jsonl/.parquet).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Adapter directory.")],
    steps: Annotated[int, typer.Option(help="Stop after this many steps (-1: epochs).")] = -1,
    epochs: Annotated[float, typer.Option(help="Passes over the data.")] = 1.0,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 2e-4,
    batch_size: Annotated[int, typer.Option(help="Records per step.")] = 4,
    lora_r: Annotated[int, typer.Option(help="LoRA rank.")] = 8,
    max_length: Annotated[int, typer.Option(help="Truncate records to this many tokens.")] = 512,
    beta: Annotated[float, typer.Option(help="DPO beta.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    save_steps: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 50,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint.")] = False,
) -> None:
    """Train a LoRA adapter with TRL + peft (CPU works for small models); prints loss and ETA."""
    from medsafe.align.train import METHODS, TrainOptions, train

    if method not in METHODS:
        raise fail(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    opts = TrainOptions(
        method=method,
        base=base,
        data=data,
        out=output,
        max_steps=steps,
        epochs=epochs,
        learning_rate=lr,
        batch_size=batch_size,
        lora_r=lora_r,
        max_length=max_length,
        beta=beta,
        seed=seed,
        save_steps=save_steps,
        resume=resume,
    )
    try:
        result = train(opts, report=lambda line: err.print(Text(line)))
    except MedsafeError as exc:
        raise fail(exc) from None
    loss = "n/a" if result.final_loss is None else f"{result.final_loss:.4f}"
    model_dir = result.base_checkpoint or str(base)
    out.print(
        Text(
            f"adapter -> {output} ({result.steps} steps, final loss {loss}, {result.seconds}s); "
            f"evaluate with --model 'hf/{model_dir}?adapter={output}'"
        )
    )


@align_app.command("targets")
def targets_command(
    run: Annotated[str, typer.Argument(help="The run to aim at.")],
    db: DbOption = Path("medsafe.db"),
    scorer: Annotated[str, typer.Option(help="Safety scorer (1 safe, 0 unsafe).")] = "guardian",
    top: Annotated[int, typer.Option(help="How many categories.")] = 3,
    seeds: Annotated[
        Path | None, typer.Option("-o", "--seeds", help="Write their failing items (JSONL suite).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The worst categories (by the upper 95% bound) and their failing items: where to aim."""
    from medsafe.align.targets import worst_categories, write_seeds

    try:
        if not db.is_file():
            raise fail(f"{db}: no such store")
        targets = worst_categories(db, run, scorer, top)
        written = write_seeds(seeds, targets) if seeds is not None else None
    except MedsafeError as exc:
        raise fail(exc) from None
    if json_output:
        emit_json(
            {
                "targets": [
                    {
                        "category": t.category,
                        **t.estimate.model_dump(mode="json"),
                        "failing": [i.id for i in t.failing],
                    }
                    for t in targets
                ],
                "seeds": None if seeds is None else {"path": str(seeds), "items": written},
            }
        )
        return
    for t in targets:
        out.print(
            Text(
                f"{t.category}: {_pct(t.estimate.value)}{_ci(t.estimate.ci95)} safe "
                f"(n={t.estimate.n}), {len(t.failing)} failing items"
            )
        )
    if seeds is not None:
        err.print(Text(f"{written} failing items -> {seeds}"))
