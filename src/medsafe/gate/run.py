"""Run a policy's ``[[suites]]`` with one model (``medsafe gate POLICY --model M``).

Each entry is one run in the same store, planned and carried out by the pipeline exactly as
``medsafe run`` would; its run id is ``gate-NAME-MODEL`` unless the entry names one, so running
the gate again resumes the same runs (only what is missing is generated and scored).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medsafe.errors import ConfigError
from medsafe.gate.policy import LoadedPolicy, SuiteEntry
from medsafe.pipeline import RunOptions, run_evaluation
from medsafe.report.data import RunRef
from medsafe.schema import ScorerSpec


@dataclass(frozen=True)
class SuiteRun:
    """One suite's run: its reference and whether every model call failed."""

    name: str
    ref: RunRef
    n: int
    failed: int

    @property
    def all_failed(self) -> bool:
        """The run has items and every model call for them failed."""
        return self.n > 0 and self.failed == self.n


def scorer_spec(text: str) -> ScorerSpec:
    """``NAME`` or ``NAME:key=value,...`` (as ``medsafe run --scorer`` reads it)."""
    name, _, rest = text.partition(":")
    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"scorer option {part!r} must look like key=value")
        options[key.strip()] = value.strip()
    if not name.strip():
        raise ConfigError(f"scorer {text!r} has no name")
    return ScorerSpec(name=name.strip(), options=options)


def default_run_id(entry: SuiteEntry, model: str) -> str:
    """``gate-NAME-MODEL`` with anything but letters, digits, ``.``, ``_`` and ``-`` as ``-``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"gate-{entry.name}-{model}").strip("-")


def _suite_ref(entry: SuiteEntry, policy_dir: Path) -> str:
    """A path relative to the policy file when it exists there, else as written (a path from
    the working directory or a bundled suite name)."""
    candidate = policy_dir / entry.suite
    return str(candidate) if candidate.exists() else entry.suite


def run_suites(
    loaded: LoadedPolicy,
    *,
    model: str,
    db: Path,
    config: Path | None,
    progress: bool = False,
    notify: Callable[[str], None] | None = None,
) -> list[SuiteRun]:
    """Run (or resume) every ``[[suites]]`` entry with ``model``; the runs, in policy order."""
    entries = loaded.policy.suites
    if not entries:
        raise ConfigError(f"{loaded.path}: no [[suites]] to run; judge existing runs with --run")
    out = []
    for entry in entries:
        options = RunOptions(
            suite=_suite_ref(entry, loaded.path.parent),
            model=model,
            db=db,
            run_id=entry.run_id or default_run_id(entry, model),
            fmt=entry.format,
            limit=entry.limit,
            rotate=entry.rotate,
            scorers=tuple(scorer_spec(s) for s in entry.scorers) if entry.scorers else None,
            config=config,
            judges=tuple(entry.judges),
            attacker=entry.attacker,
            attack_mode=entry.attack_mode,
            show_progress=progress,
            notify=notify,
        )
        outcome = run_evaluation(options)
        results = outcome.results
        out.append(SuiteRun(entry.name, RunRef(outcome.spec.run_id, db), results.n, results.failed))
    return out
