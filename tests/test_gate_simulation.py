"""The gate's simulation study (bench/gate_simulation.py) keeps working: a few simulated runs per
design through the same decision functions the CLI uses (the 10,000-run figures in
docs/governance.md come from running it by hand)."""

from __future__ import annotations

from bench import gate_simulation


def test_simulation_runs_every_design_with_few_runs() -> None:
    cells = gate_simulation.run(60, naive_sims=30, resamples=199)
    designs = {c.design for c in cells}
    assert designs == {
        "proportion on the bound",
        "proportion below (power)",
        "paired non-inferiority",
        "clustered items",
        "clustered binary (rotations)",
    }
    assert all(0 <= c.passes <= c.sims for c in cells)
    power = {c.setting: c.rate for c in cells if c.design == "proportion below (power)"}
    assert power["n=10000, p=0.03"] == 1.0
    aware = [c for c in cells if c.rule.startswith("cluster-robust")]
    naive = [c for c in cells if c.rule.startswith(("naive", "Tango on rotations"))]
    assert len(aware) == len(naive) == 6
    # ignoring the clusters passes a model on the margin far more often
    assert sum(c.rate for c in naive) > 2 * sum(c.rate for c in aware)
    table = gate_simulation.markdown(cells)
    assert table.startswith("| design | setting | rule |") and "ICC 0.7" in table
