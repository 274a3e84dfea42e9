"""``medsafe redteam strategies|build|discover``: the red-teaming sub-commands (thin layer)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from medsafe.cli.dboption import DB_HELP, db_location
from medsafe.errors import MedsafeError
from medsafe.exits import fail
from medsafe.formatting import emit_json

if TYPE_CHECKING:
    from medsafe.redteam.build import SeedProblem, TranslationStats

redteam_app = typer.Typer(
    help="Multi-turn red-teaming: strategies, dialogue suites, strategy discovery.",
    no_args_is_help=True,
)
console = Console(stderr=True)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)

StrategyDirs = Annotated[
    list[Path] | None,
    typer.Option("--strategy-dir", help="Extra folder of strategy JSON files (repeatable)."),
]


@redteam_app.command("strategies")
def strategies_command(
    strategy_dir: StrategyDirs = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the attack strategies with their definitions and citations."""
    from medsafe.redteam.strategy import StrategyLibrary

    try:
        library = StrategyLibrary.load(strategy_dir or ())
    except MedsafeError as exc:
        raise fail(exc) from None
    if as_json:
        data = [s.model_dump(mode="json", exclude={"turns"}) for s in library]
        emit_json(data)
        return
    table = Table(title="Attack strategies", title_justify="left", show_lines=True)
    for column in ("name", "definition", "citation"):
        table.add_column(column)
    for strategy in library:
        origin = strategy.provenance.get("origin", "")
        name = strategy.name if origin == "builtin" else f"{strategy.name}\n({origin})"
        table.add_row(name, f"{strategy.title}: {strategy.definition}", strategy.citation[0])
    out.print(table)


@redteam_app.command("build")
def build_command(
    seeds: Annotated[Path, typer.Argument(help="Seed file (.txt/.jsonl/.csv) or folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Suite file to write (JSONL).")],
    strategies: Annotated[
        str, typer.Option("--strategies", help="Comma-separated strategy names, or all.")
    ] = "all",
    languages: Annotated[str, typer.Option(help="Comma-separated: en, ja, zh.")] = "en",
    turns: Annotated[int, typer.Option(min=1, help="Turns per conversation.")] = 3,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N seeds.")] = None,
    strategy_dir: StrategyDirs = None,
    translate: Annotated[
        str | None,
        typer.Option(
            "--translate",
            help="Translate seeds into each other language with this model (config name or "
            "KIND/NAME), so each conversation is in one language.",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help=escape("TOML of named models ([models.NAME]).")),
    ] = None,
) -> None:
    """Build a dialogue suite: every seed x strategy x language, duplicates dropped (streamed)."""
    from medsafe.redteam.build import build_suite, parse_languages
    from medsafe.redteam.strategy import StrategyLibrary
    from medsafe.redteam.translate import load_translator

    started = time.perf_counter()
    try:
        library = StrategyLibrary.load(strategy_dir or ())
        translator = load_translator(translate, config) if translate else None
        stats = build_suite(
            seeds,
            output,
            library=library,
            strategies=library.select(strategies),
            languages=parse_languages(languages),
            turns=turns,
            limit=limit,
            translator=translator,
        )
    except MedsafeError as exc:
        raise fail(exc) from None
    if stats.translation is not None:
        _print_translation(stats.translation)
    out.print(
        f"wrote {stats.conversations:,} conversations from {stats.seeds:,} seeds "
        f"({stats.duplicates:,} duplicates dropped) to {output} "
        f"in {time.perf_counter() - started:.1f}s",
        markup=False,
    )


def _first(problems: list[SeedProblem], n: int = 5) -> str:
    shown = ", ".join(f"{p.seed_id}/{p.language}" for p in problems[:n])
    return shown + (", ..." if len(problems) > n else "")


def _print_translation(stats: TranslationStats) -> None:
    """What ``--translate`` did: translations served, asked, flagged and failed."""
    out.print(
        f"translations by {stats.translator}: {stats.needed:,} needed, {stats.cached:,} from "
        f"{stats.cache}, {stats.asked:,} asked",
        markup=False,
        soft_wrap=True,
    )
    if stats.flagged:
        reasons: dict[str, int] = {}
        for flag in stats.flagged:
            reasons[flag.reason] = reasons.get(flag.reason, 0) + 1
        counts = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
        console.print(
            f"warning: {len(stats.flagged):,} seed translations flagged and left out ({counts}): "
            f"{_first(stats.flagged)}; listed in {stats.flags_path}",
            markup=False,
            soft_wrap=True,
        )
    if stats.failed:
        console.print(
            f"warning: {len(stats.failed):,} seed translations failed and were left out "
            f"(first: {stats.failed[0].reason}): {_first(stats.failed)}; a re-run asks again",
            markup=False,
            soft_wrap=True,
        )


@redteam_app.command("discover")
def discover_command(
    run_id: Annotated[str, typer.Argument(help="A finished, scored red-team run.")],
    attacker: Annotated[str, typer.Option(help="Attacker model (config name or KIND/NAME).")],
    db: Annotated[Path, typer.Option("--db", help=DB_HELP, callback=db_location)] = Path(
        "medsafe.db"
    ),
    config: Annotated[
        Path | None,
        typer.Option("--config", help=escape("TOML of named models ([models.NAME]).")),
    ] = None,
    proposals: Annotated[int, typer.Option(min=1, help="Strategies to ask for.")] = 3,
    sample: Annotated[int, typer.Option(min=2, help="Seeds each proposal is tried on.")] = 50,
    out_dir: Annotated[
        Path, typer.Option("-o", "--out-dir", help="Where kept strategies are written.")
    ] = Path("strategies"),
    strategy_dir: StrategyDirs = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Propose strategies from a run's broken conversations; keep those that beat the best one.

    A proposal is kept only when its attack success rate beats the best existing strategy's
    with the 95% CI of the difference above 0.
    """
    from medsafe.discover import DiscoveryOptions, discover

    try:
        trials, baseline = discover(
            DiscoveryOptions(
                run_id=run_id,
                db=db,
                attacker=attacker,
                config=config,
                proposals=proposals,
                sample=sample,
                out_dir=out_dir,
                strategy_dirs=tuple(strategy_dir or ()),
            )
        )
    except MedsafeError as exc:
        raise fail(exc) from None
    rows: list[dict[str, Any]] = [
        {
            "name": t.name,
            "saved": str(t.saved) if t.saved else None,
            "asr": t.asr,
            "difference": t.difference,
            "error": t.error,
        }
        for t in trials
    ]
    if as_json:
        data = {"baseline": baseline, "trials": rows}
        emit_json(data)
        return
    out.print(
        f"baseline: {baseline['strategy']} ASR {baseline['value']:.3f} (n={baseline['n']})",
        markup=False,
    )
    for trial in rows:
        if trial["error"]:
            out.print(f"  {trial['name']}: rejected ({trial['error']})", markup=False)
        else:
            verdict = f"saved to {trial['saved']}" if trial["saved"] else "not better; not saved"
            out.print(
                f"  {trial['name']}: ASR {trial['asr']['value']:.3f}, {verdict}", markup=False
            )
