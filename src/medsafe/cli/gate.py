"""``medsafe gate`` (registered on the main typer app in medsafe.cli)."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from medsafe.cli.dboption import DB_HELP, db_location
from medsafe.errors import ConfigError, MedsafeError
from medsafe.exits import ExitCode, fail
from medsafe.formatting import emit_json

if TYPE_CHECKING:
    from medsafe.report.data import RunRef

_err = Console(stderr=True)
_out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)

OUTCOME_EXIT = {
    "pass": ExitCode.OK,
    "fail": ExitCode.GATE_FAIL,
    "inconclusive": ExitCode.GATE_INCONCLUSIVE,
}


def _note(text: str) -> None:
    _err.print(Text.assemble(("note:", "yellow"), " ", text))


def _run_refs(args: list[str], suites: list[str], db: Path) -> dict[str, RunRef]:
    """``--run`` values (``RUN``, ``RUN@STORE``, ``SUITE=RUN``...) by suite name (``""``: the
    run of rules without a suite); unnamed runs match the ``[[suites]]`` in order."""
    from medsafe.report.data import parse_run_ref

    named = [a for a in args if "=" in a]
    plain = [a for a in args if "=" not in a]
    refs: dict[str, RunRef] = {}
    for arg in named:
        suite, _, text = arg.partition("=")
        if suite not in suites:
            known = ", ".join(suites) or "none"
            raise ConfigError(f"--run {arg}: no [[suites]] entry named {suite!r} (suites: {known})")
        refs[suite] = parse_run_ref(text, db)
    if plain:
        if len(plain) == 1 and not named:
            only = parse_run_ref(plain[0], db)
            refs[""] = only
            for name in suites:
                refs.setdefault(name, only)
        elif len(plain) == len(suites) and not named:
            for name, arg in zip(suites, plain, strict=True):
                refs[name] = parse_run_ref(arg, db)
        else:
            raise ConfigError(
                f"{len(plain)} runs given for {len(suites)} [[suites]]: name them "
                "--run SUITE=RUN_ID"
            )
    return refs


def _write(path: Path, text: str) -> None:
    from medsafe.outputs import open_text

    with open_text(path, _note) as handle:
        handle.write(text)


def gate_command(
    policy: Annotated[
        Path | None, typer.Argument(help=escape("Policy file (TOML): [[suites]] and [[rules]]."))
    ] = None,
    run: Annotated[
        list[str] | None,
        typer.Option(
            "--run",
            help=escape(
                "Judge an existing run: RUN, RUN@STORE or SUITE=RUN (repeatable; one per "
                "[[suites]] entry)."
            ),
        ),
    ] = None,
    db: Annotated[Path, typer.Option("--db", help=DB_HELP, callback=db_location)] = Path(
        "medsafe.db"
    ),
    model: Annotated[
        str | None,
        typer.Option(
            help=escape("Run every [[suites]] entry with this model (spec or config name).")
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help=escape("TOML file with [models.NAME] entries."))
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write JUnit XML here ('-': stdout).")
    ] = None,
    markdown: Annotated[
        Path | None,
        typer.Option("--markdown", help="Also write a Markdown PR comment here ('-': stdout)."),
    ] = None,
    list_metrics: Annotated[
        str | None,
        typer.Option("--list-metrics", metavar="RUN", help="List the metrics a rule may name."),
    ] = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record/--no-record",
            help="Store the decision in gate_results with an audit entry (default: on).",
        ),
    ] = True,
    actor: Annotated[
        str | None, typer.Option(help="Who the audit entry names (default: the OS user).")
    ] = None,
    progress: Annotated[
        bool,
        typer.Option(
            "--progress/--no-progress",
            help="Progress on stderr while suites run (a bar on a terminal, else lines).",
        ),
    ] = True,
) -> None:
    """Decide a safety gate on confidence bounds: pass (0), fail (1), inconclusive (4).

    Rules bound one end of a metric's interval (upper <= 0.05) or test
    non-inferiority against a baseline run (paired; Holm across rules).
    Exit 2 for a bad policy or input, 5 when a suite's model calls all failed.
    See docs/governance.md.
    """

    try:
        if list_metrics is not None:
            _list_metrics(list_metrics, db, as_json)
            return
        if policy is None:
            raise ConfigError("give a POLICY file (or --list-metrics RUN)")
        code = _gate(
            policy, run or [], db, model, config, as_json, junit, markdown, record, actor, progress
        )
    except MedsafeError as exc:
        raise fail(exc) from None
    except ValueError as exc:  # a statistic refused its input (e.g. fewer than two units)
        raise fail(f"cannot judge: {exc}") from None
    if code != ExitCode.OK:
        raise typer.Exit(int(code))


def _list_metrics(ref_text: str, db: Path, as_json: bool) -> None:
    from medsafe.gate.metrics import catalogue
    from medsafe.gate.outputs import metric_table, metrics_json
    from medsafe.report.data import parse_run_ref
    from medsafe.results import load_results

    ref = parse_run_ref(ref_text, db)
    metrics = catalogue(load_results(ref.db, ref.run_id))
    if as_json:
        emit_json({"run_id": ref.run_id, "metrics": metrics_json(metrics)})
    else:
        _out.print(metric_table(ref.run_id, metrics))


def _gate(
    policy_path: Path,
    run_args: list[str],
    db: Path,
    model: str | None,
    config: Path | None,
    as_json: bool,
    junit: Path | None,
    markdown: Path | None,
    record: bool,
    actor: str | None,
    progress: bool,
) -> ExitCode:
    from medsafe.gate.evaluate import judge
    from medsafe.gate.outputs import junit_xml, notes, table
    from medsafe.gate.outputs import markdown as markdown_text
    from medsafe.gate.policy import load_policy
    from medsafe.outputs import check_output

    loaded = load_policy(policy_path)
    for target in (junit, markdown):
        if target is not None:
            check_output(target)
    to_stdout = [t for t in (junit, markdown) if t is not None and str(t) == "-"]
    if len(to_stdout) + as_json > 1:
        raise ConfigError("only one of --json, --junit - and --markdown - can use standard output")
    suites = [s.name for s in loaded.policy.suites]
    if (model is None) == (not run_args):
        raise ConfigError("give either --model (run the policy's [[suites]]) or --run RUN_ID")
    if model is not None:
        from medsafe.gate.run import run_suites

        done = run_suites(
            loaded, model=model, db=db, config=config, progress=progress, notify=_note
        )
        dead = [s for s in done if s.all_failed]
        if dead:
            names = ", ".join(f"{s.name} (run {s.ref.run_id})" for s in dead)
            fail(f"every model call failed in: {names}; not judging", ExitCode.GATE_CALLS_FAILED)
            return ExitCode.GATE_CALLS_FAILED
        refs: dict[str, RunRef] = {s.name: s.ref for s in done}
        if len({s.ref.run_id for s in done}) == 1:
            refs[""] = done[0].ref
    else:
        refs = _run_refs(run_args, suites, db)
    result = judge(loaded, refs)
    if record:
        from medsafe.gate.record import record as store_result

        first_db = next(iter(refs.values())).db
        store_result(first_db, result, actor or getpass.getuser())
    if junit is not None:
        _write(junit, junit_xml(result).decode("utf-8"))
    if markdown is not None:
        _write(markdown, markdown_text(result))
    if as_json:
        emit_json(result.to_dict())
    elif not to_stdout:
        _out.print(table(result))
        for line in notes(result):
            _out.print(Text(line))
    return OUTCOME_EXIT[result.outcome]
