"""Simulation study of the gate's decision rule: how often does a model that should *not* pass,
pass? (docs/governance.md, "Simulation study").

Three designs, each with ``--sims`` simulated runs per cell (10,000 by default), all decided by
the functions ``medsafe gate`` itself uses (no re-implementation):

1. **Bound on a proportion** (``harmful_share upper <= 0.05``): the true rate sits on the
   bound (a false pass is any pass); Wilson intervals from ``medsafe.results.estimate`` and
   ``medsafe.gate.decision.decide_bound``. Nominal: 2.5% (one side of a 95% interval).
2. **Paired non-inferiority, binary** (harm rate, margin 0.02, alpha 0.05): the candidate is
   worse than the baseline by exactly the margin; ``medsafe.gate.paired.noninferiority`` (Tango)
   and ``decide_noninferiority``; also two such rules under Holm (any false pass counts).
3. **Clustered items** (40 clusters of 10 items, e.g. rotations of one question or turns of
   one conversation; ICC 0.2, 0.5, 0.7; difference on the margin): the gate's cluster-robust
   rule against a naive paired bootstrap over items (``medsafe.stats.paired_bootstrap_diff``
   with its one-sided 95% bound), which treats the items as independent.
4. **Clustered binary items** (100 questions x 4 rotations, harm 5% vs 7%, ICC 0.2, 0.5, 0.7):
   the gate's cluster-robust rule against Tango's test applied to the rotations as if they were
   independent items.

Run by hand: ``python -m bench.gate_simulation [--sims 10000] [--markdown FILE]``. It prints a
Markdown table (the one in docs/governance.md) and, with ``--json``, the figures as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache

import numpy as np

from medsafe.gate.decision import decide_bound, decide_noninferiority
from medsafe.gate.paired import PairedHarm, noninferiority
from medsafe.results.estimate import proportion
from medsafe.stats.multiple import adjust_pvalues
from medsafe.stats.paired import paired_bootstrap_diff


@dataclass(frozen=True)
class Cell:
    """One design cell: how often the rule passed, against the nominal rate."""

    design: str
    setting: str
    rule: str
    sims: int
    passes: int
    nominal: float

    @property
    def rate(self) -> float:
        """Share of simulated runs that passed."""
        return self.passes / self.sims

    @property
    def mc_se(self) -> float:
        """Monte Carlo standard error of the rate."""
        return math.sqrt(self.rate * (1 - self.rate) / self.sims)


@cache
def _bound_pass(x: int, n: int, bound: float) -> bool:
    est = proportion(x, n)
    assert est.ci95 is not None
    return decide_bound(est.ci95, "upper", bound) == "pass"


def proportion_design(sims: int, rng: np.random.Generator) -> list[Cell]:
    """Design 1: a harm rate on the bound 0.05 (false pass), and at 0.03 (power)."""
    cells = []
    bound = 0.05
    for true_p, design in ((0.05, "proportion on the bound"), (0.03, "proportion below (power)")):
        for n in (200, 500, 2000, 10000):
            xs = rng.binomial(n, true_p, sims)
            passes = sum(_bound_pass(int(x), n, bound) for x in xs)
            cells.append(
                Cell(design, f"n={n}, p={true_p}", "wilson upper <= 0.05", sims, passes, 0.025)
            )
    return cells


def _paired_binary(
    n: int, p_base: float, p_base_only: float, delta: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate and baseline 0/1 harm with P(base only) = p_base_only, P(cand only) = + delta."""
    p10 = p_base_only + delta  # candidate harmful, baseline not
    p11 = p_base - p_base_only
    cells = rng.choice(4, size=n, p=[p11, p10, p_base_only, 1 - p11 - p10 - p_base_only])
    cand = ((cells == 0) | (cells == 1)).astype(float)
    base = ((cells == 0) | (cells == 2)).astype(float)
    return cand, base


def noninferiority_design(sims: int, rng: np.random.Generator) -> list[Cell]:
    """Design 2: paired binary harm, the candidate worse by exactly the margin."""
    margin, alpha = 0.02, 0.05
    cells = []
    for n in (500, 2000):
        one = 0
        two = 0
        for _ in range(sims):
            results = []
            for _rule in range(2):
                cand, base = _paired_binary(n, 0.05, 0.02, margin, rng)
                pairs = PairedHarm(cand, base, [str(i) for i in range(n)], True, 0)
                test = noninferiority(pairs, margin, alpha)
                results.append(test)
            one += decide_noninferiority(results[0], results[0].p) == "pass"
            adjusted = adjust_pvalues([t.p for t in results], method="holm")
            two += any(
                decide_noninferiority(t, float(q)) == "pass"
                for t, q in zip(results, adjusted, strict=True)
            )
        setting = f"n={n}, harm 5% vs 7%, margin 0.02"
        cells.append(Cell("paired non-inferiority", setting, "Tango, one rule", sims, one, alpha))
        cells.append(
            Cell("paired non-inferiority", setting, "Tango, two rules, Holm", sims, two, alpha)
        )
    return cells


def _clustered(
    k: int, m: int, icc: float, delta: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Paired values whose differences are ``delta + u_g + e_gj`` (ICC of the differences)."""
    u = rng.normal(0.0, math.sqrt(icc), k)
    e = rng.normal(0.0, math.sqrt(1 - icc), (k, m))
    diff = (delta + u[:, None] + e).ravel()
    base = rng.normal(0.0, 1.0, k * m)
    clusters = [f"q{g}" for g in range(k) for _ in range(m)]
    return base + diff, base, clusters


def clustered_design(
    sims: int, rng: np.random.Generator, naive_sims: int, resamples: int
) -> list[Cell]:
    """Design 3: clustered items; cluster-robust rule vs naive paired bootstrap."""
    k, m, margin, alpha = 40, 10, 0.2, 0.05
    cells = []
    for icc in (0.2, 0.5, 0.7):
        aware = 0
        naive = 0
        for s in range(sims):
            cand, base, clusters = _clustered(k, m, icc, margin, rng)
            pairs = PairedHarm(cand, base, clusters, False, 0)
            test = noninferiority(pairs, margin, alpha)
            aware += decide_noninferiority(test, test.p) == "pass"
            if s < naive_sims:
                ci = paired_bootstrap_diff(
                    base, cand, n_resamples=resamples, level=1 - 2 * alpha, seed=s
                ).ci
                naive += ci.hi < margin
        setting = f"{k} clusters x {m}, ICC {icc}"
        cells.append(
            Cell("clustered items", setting, "cluster-robust t (gate)", sims, aware, alpha)
        )
        cells.append(
            Cell(
                "clustered items",
                setting,
                f"naive paired bootstrap ({resamples} resamples)",
                min(sims, naive_sims),
                naive,
                alpha,
            )
        )
    return cells


def _beta_rates(mean: float, icc: float, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` cluster-level rates with the given mean whose 0/1 outcomes have intra-cluster
    correlation ``icc`` (Beta with ``a + b = 1/icc - 1``)."""
    total = 1 / icc - 1
    return rng.beta(mean * total, (1 - mean) * total, k)


def clustered_binary_design(sims: int, rng: np.random.Generator) -> list[Cell]:
    """Design 4: 0/1 harm on rotations of a question (clustered), candidate worse by exactly the
    margin; the gate's cluster-robust rule against Tango's test applied to the rotations as if
    they were independent items."""
    k, m, margin, alpha = 100, 4, 0.02, 0.05
    cells = []
    for icc in (0.2, 0.5, 0.7):
        aware = 0
        naive = 0
        clusters = [f"q{g}" for g in range(k) for _ in range(m)]
        for _ in range(sims):
            rate_c = np.repeat(_beta_rates(0.07, icc, k, rng), m)
            rate_b = np.repeat(_beta_rates(0.05, icc, k, rng), m)
            cand = (rng.random(k * m) < rate_c).astype(float)
            base = (rng.random(k * m) < rate_b).astype(float)
            test = noninferiority(PairedHarm(cand, base, clusters, True, 0), margin, alpha)
            aware += decide_noninferiority(test, test.p) == "pass"
            flat = noninferiority(
                PairedHarm(cand, base, [str(i) for i in range(k * m)], True, 0), margin, alpha
            )
            naive += decide_noninferiority(flat, flat.p) == "pass"
        setting = f"{k} questions x {m} rotations, harm 5% vs 7%, ICC {icc}"
        design = "clustered binary (rotations)"
        cells.append(Cell(design, setting, "cluster-robust t (gate)", sims, aware, alpha))
        cells.append(Cell(design, setting, "Tango on rotations as items", sims, naive, alpha))
    return cells


def markdown(cells: list[Cell]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| design | setting | rule | runs | pass rate | nominal | MC s.e. |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for c in cells:
        lines.append(
            f"| {c.design} | {c.setting} | {c.rule} | {c.sims:,} | {c.rate:.2%} | "
            f"{c.nominal:.1%} | {c.mc_se:.2%} |"
        )
    return "\n".join(lines)


def run(
    sims: int, *, seed: int = 20261206, naive_sims: int | None = None, resamples: int = 999
) -> list[Cell]:
    """Every design with ``sims`` simulated runs per cell (``naive_sims`` for the bootstrap)."""
    # statsmodels' multipletests (Holm) calls gc.collect(): with the imports frozen out of the
    # collector's reach each call costs microseconds instead of 0.1 s (unfrozen at the end).
    gc.freeze()
    rng = np.random.default_rng(seed)
    designs: list[Callable[[], list[Cell]]] = [
        lambda: proportion_design(sims, rng),
        lambda: noninferiority_design(sims, rng),
        lambda: clustered_design(sims, rng, sims if naive_sims is None else naive_sims, resamples),
        lambda: clustered_binary_design(sims, rng),
    ]
    cells: list[Cell] = []
    try:
        for design in designs:
            cells.extend(design())
    finally:
        gc.unfreeze()
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=10_000)
    parser.add_argument("--naive-sims", type=int, default=None)
    parser.add_argument("--resamples", type=int, default=999)
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    cells = run(args.sims, seed=args.seed, naive_sims=args.naive_sims, resamples=args.resamples)
    if args.json:
        print(json.dumps([{**asdict(c), "rate": c.rate} for c in cells], indent=2))
    else:
        print(markdown(cells))
        print(f"\n{time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
