"""Judge a policy's rules over runs: each rule's figure, interval, outcome and the n it needs.

Every figure comes from the run's :class:`~medsafe.results.RunResults` (through the metric
catalogue); non-inferiority pairs the two runs' item values (:mod:`medsafe.gate.paired`).
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from medsafe.errors import ConfigError
from medsafe.gate.decision import (
    Outcome,
    bound_n_needed,
    decide_bound,
    decide_noninferiority,
    noninferiority_n_needed,
    overall,
    rescaled,
    wilson_at,
)
from medsafe.gate.metrics import Metric, catalogue
from medsafe.gate.paired import noninferiority, paired_harm
from medsafe.gate.policy import LoadedPolicy, Rule, line_of
from medsafe.report.data import RunRef, parse_run_ref
from medsafe.results import RunResults, load_results
from medsafe.stats.multiple import adjust_pvalues
from medsafe.stats.noninferiority import NonInferiority
from medsafe.store.schema_gate import review_state
from medsafe.store.sqlite import Store


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass
class Check:
    """One precondition of a rule."""

    check: str
    ok: bool
    detail: str


@dataclass
class RuleResult:
    """The decision on one rule."""

    index: int
    rule: Rule
    run_id: str
    metric: Metric
    estimate: float | None
    ci: tuple[float, float] | None
    level: float
    side: str
    bound: float
    outcome: Outcome
    n_needed: int | None = None
    n_needed_method: str | None = None
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``bound`` or ``noninferiority``."""
        return "noninferiority" if self.rule.is_noninferiority else "bound"

    def to_dict(self) -> dict[str, Any]:
        """The rule's entry in ``medsafe gate --json``."""
        return {
            "name": self.rule.label,
            "metric": self.rule.metric,
            "kind": self.kind,
            "suite": self.rule.suite,
            "run_id": self.run_id,
            "estimate": _num(self.estimate),
            "ci": None if self.ci is None else [_num(self.ci[0]), _num(self.ci[1])],
            "level": self.level,
            "bound": {"side": self.side, "value": self.bound},
            "outcome": self.outcome,
            "n_needed": self.n_needed,
            "n_needed_method": self.n_needed_method,
            "n": self.metric.n,
            "method": self.metric.method,
            "preconditions": [c.__dict__ for c in self.checks],
            "notes": list(self.notes),
            **self.extra,
        }


@dataclass
class GateResult:
    """A whole gate decision."""

    policy: LoadedPolicy
    runs: dict[str, str]
    rules: list[RuleResult]

    @property
    def outcome(self) -> Outcome:
        """Fail if any rule fails, else inconclusive if any is, else pass."""
        return overall([r.outcome for r in self.rules])

    def to_dict(self) -> dict[str, Any]:
        """``medsafe gate --json``: outcome, the policy, the runs and every rule."""
        return {
            "outcome": self.outcome,
            "policy": {
                "name": self.policy.policy.gate.name,
                "path": str(self.policy.path),
                "sha256": self.policy.sha256,
            },
            "runs": dict(self.runs),
            "rules": [r.to_dict() for r in self.rules],
        }


class _Runs:
    """The runs a gate judges, by suite name (``""``: the run of rules without a suite)."""

    def __init__(self, refs: dict[str, RunRef]) -> None:
        self.refs = refs
        self._results: dict[str, RunResults] = {}

    def ref_for(self, loaded: LoadedPolicy, index: int, rule: Rule) -> RunRef:
        if rule.suite is not None and rule.suite in self.refs:
            return self.refs[rule.suite]
        if rule.suite is None and len({r.run_id for r in self.refs.values()}) == 1:
            return next(iter(self.refs.values()))
        line = line_of(loaded.text, ("rules", index, "suite" if rule.suite else "metric"))
        given = ", ".join(f"{k or '(default)'}={v.run_id}" for k, v in self.refs.items())
        wanted = rule.suite or "no suite"
        raise ConfigError(
            f"{loaded.path}:{line}: rules[{index}]: which run does it judge ({wanted})? runs "
            f"given: {given or 'none'}; give --run SUITE=RUN_ID for each [[suites]] entry"
        )

    def results(self, ref: RunRef) -> RunResults:
        key = f"{ref.db}\0{ref.run_id}"
        if key not in self._results:
            self._results[key] = load_results(ref.db, ref.run_id)
        return self._results[key]


def _metric(loaded: LoadedPolicy, index: int, rule: Rule, results: RunResults) -> Metric:
    metrics = catalogue(results)
    metric = metrics.get(rule.metric)
    if metric is None:
        line = line_of(loaded.text, ("rules", index, "metric"))
        raise ConfigError(
            f"{loaded.path}:{line}: rules[{index}].metric: run {results.run_id!r} has no metric "
            f"{rule.metric!r} (list them: medsafe gate --list-metrics {results.run_id})"
        )
    return metric


def _refuse(loaded: LoadedPolicy, index: int, key: str, message: str) -> ConfigError:
    line = line_of(loaded.text, ("rules", index, key))
    return ConfigError(f"{loaded.path}:{line}: rules[{index}].{key}: {message}")


def _bound_rule(
    loaded: LoadedPolicy, index: int, rule: Rule, ref: RunRef, results: RunResults, m: Metric
) -> RuleResult:
    level = loaded.policy.level_of(rule)
    if m.clustered is not None:
        raise _refuse(loaded, index, "metric", f"{m.name}: {m.clustered}")
    if m.value is None or m.ci95 is None:
        why = f"{m.n} units"
        block = results.scorers.get(m.scorer or "")
        if block is not None and block.failed:
            why = (
                f"{block.failed} of {block.ok + block.failed} scores failed; "
                f"medsafe results {ref.run_id} shows why"
            )
        raise _refuse(
            loaded,
            index,
            "metric",
            f"{m.name} has no interval in run {ref.run_id!r} ({why}); a bound needs one",
        )
    notes: list[str] = []
    if m.method == "wilson":
        ci = wilson_at(m.value, m.n, level)
    else:
        ci = rescaled(m.value, m.ci95, level)
        if level != 0.95:
            notes.append(f"interval moved from 95% to {level:g} by the normal z ratio")
    side = rule.side
    bound = rule.bound
    assert side is not None and bound is not None
    outcome = decide_bound(ci, side, bound)
    result = RuleResult(index, rule, ref.run_id, m, m.value, ci, level, side, bound, outcome)
    result.notes.extend(notes)
    if outcome == "inconclusive":
        kind = "proportion" if m.method == "wilson" else m.kind
        result.n_needed, result.n_needed_method = bound_n_needed(
            kind, m.value, ci, m.n, side, bound, level
        )
        if result.n_needed is None:
            result.notes.append("the estimate sits on the bound: no n decides")
    return result


def _signoff_check(conn: sqlite3.Connection, run_id: str) -> Check:
    """The run's latest sign-off approves it and the run has not changed since."""
    from medsafe.audit.signoffs import signoffs_for

    found = signoffs_for(conn, run_id)
    if not found:
        return Check("signed_off", False, "no sign-off")
    last = found[-1]
    detail = f"{last.decision} by {last.actor} at {last.ts}"
    if last.stale:
        return Check("signed_off", False, detail + "; the run changed since (stale)")
    return Check("signed_off", last.decision == "approve", detail)


def _preconditions(
    loaded: LoadedPolicy, index: int, rule: Rule, ref: RunRef, results: RunResults, r: RuleResult
) -> None:
    """Check the rule's preconditions; a failed one fails the rule, too few units leave it
    inconclusive."""
    checks = r.checks
    if rule.min_n is not None:
        ok = r.metric.n >= rule.min_n
        checks.append(Check("min_n", ok, f"n = {r.metric.n}, minimum {rule.min_n}"))
        if not ok and r.outcome == "pass":
            r.outcome = "inconclusive"
        if not ok and r.outcome == "inconclusive":
            r.n_needed = max(r.n_needed or 0, rule.min_n)
    if rule.min_kappa is not None:
        if r.metric.scorer is None or r.metric.scorer not in results.scorers:
            raise _refuse(loaded, index, "min_kappa", f"{r.metric.name} has no judge to calibrate")
        cal = results.scorers[r.metric.scorer].calibration
        if cal is None or cal.kappa is None:
            checks.append(
                Check(
                    "min_kappa",
                    False,
                    f"no calibration of {r.metric.scorer} against human labels is stored "
                    "(medsafe calibrate)",
                )
            )
        elif not cal.version_matches:
            checks.append(
                Check(
                    "min_kappa",
                    False,
                    f"calibrated scorer version {cal.scorer_version} differs from the run's",
                )
            )
        else:
            ok = cal.kappa >= rule.min_kappa
            checks.append(
                Check(
                    "min_kappa", ok, f"kappa {cal.kappa:.3f} (n {cal.n}), minimum {rule.min_kappa}"
                )
            )
    if rule.review_complete or rule.signed_off:
        with Store(ref.db) as store:
            conn = store.connection
            if rule.review_complete:
                tasks, open_ = review_state(conn, ref.run_id)
                ok = tasks > 0 and open_ == 0
                detail = f"{tasks} review tasks, {open_} not complete"
                checks.append(Check("review_complete", ok, detail))
            if rule.signed_off:
                checks.append(_signoff_check(conn, ref.run_id))
    if any(not c.ok and c.check != "min_n" for c in checks):
        r.outcome = "fail"
        r.n_needed = None


def _noninferiority_rule(
    loaded: LoadedPolicy, index: int, rule: Rule, ref: RunRef, results: RunResults, m: Metric
) -> tuple[RuleResult, float, NonInferiority]:
    assert rule.baseline is not None and rule.margin is not None
    try:
        baseline = parse_run_ref(rule.baseline, ref.db)
    except Exception as exc:
        raise _refuse(loaded, index, "baseline", str(exc)) from None
    pairs = paired_harm(m, ref, baseline, results)
    test = noninferiority(pairs, rule.margin, rule.one_sided_alpha)
    lower_safer = m.higher_is_safer is False
    if lower_safer:
        est, ci, side, bound = test.d, test.ci, "upper", rule.margin
    else:
        est, ci, side, bound = -test.d, (-test.ci[1], -test.ci[0]), "lower", -rule.margin
    r = RuleResult(
        index, rule, ref.run_id, m, est, ci, 1 - 2 * rule.one_sided_alpha, side, bound, "pass"
    )
    r.extra = {
        "baseline": baseline.run_id,
        "difference": "candidate - baseline",
        "test": test.test,
        "statistic": _num(test.statistic),
        "p": _num(test.p),
        "alpha": rule.one_sided_alpha,
        "margin": rule.margin,
        "n_pairs": test.n,
        "n_clusters": test.n_clusters,
    }
    if pairs.dropped:
        r.notes.append(f"{pairs.dropped} pairs without a verdict in one run left out")
    return r, (test.p if math.isfinite(test.p) else 1.0), test


def judge(loaded: LoadedPolicy, refs: dict[str, RunRef]) -> GateResult:
    """Every rule of ``loaded`` over the runs ``refs`` (by suite name; ``""`` for rules without
    one), Holm across the non-inferiority rules."""
    runs = _Runs(refs)
    out: list[RuleResult] = []
    ni: list[tuple[RuleResult, float, NonInferiority]] = []
    for index, rule in enumerate(loaded.policy.rules):
        ref = runs.ref_for(loaded, index, rule)
        results = runs.results(ref)
        m = _metric(loaded, index, rule, results)
        if rule.is_noninferiority:
            pairs_rule, p, test = _noninferiority_rule(loaded, index, rule, ref, results, m)
            ni.append((pairs_rule, p, test))
            out.append(pairs_rule)
        else:
            out.append(_bound_rule(loaded, index, rule, ref, results, m))
        _preconditions(loaded, index, rule, ref, results, out[-1])
    if ni:
        adjusted = adjust_pvalues([p for _, p, _ in ni], method="holm")
        for (r, _p, test), q in zip(ni, adjusted, strict=True):
            r.extra["p_adjusted"] = _num(float(q))
            r.extra["holm_family"] = len(ni)
            failed_check = any(not c.ok and c.check != "min_n" for c in r.checks)
            if failed_check:
                continue
            r.outcome = decide_noninferiority(test, float(q))
            if r.outcome == "inconclusive":
                r.n_needed = noninferiority_n_needed(test)
                r.n_needed_method = "noninferiority_normal"
            short = any(not c.ok and c.check == "min_n" for c in r.checks)
            if short and r.outcome == "pass":
                r.outcome = "inconclusive"
    names = {k or "(default)": v.run_id for k, v in refs.items()}
    return GateResult(loaded, names, out)
