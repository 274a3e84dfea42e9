"""Tests for medsafe.stats.turns."""

from __future__ import annotations

import numpy as np
import pytest

from medsafe.stats import by_turn_summary, cluster_bootstrap_ci


def _conversations(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    conv = np.repeat(np.arange(50), 4)
    turns = np.tile(np.arange(1, 5), 50)
    base = rng.normal(0.9, 0.05, 50)[conv]
    values = np.clip(base - 0.1 * (turns - 1) + rng.normal(0, 0.02, conv.size), 0, 1)
    return values, turns, conv


def test_summary_per_turn_matches_numpy_and_cluster_ci() -> None:
    values, turns, conv = _conversations()
    summary = by_turn_summary(values, turns, conv, n_resamples=500, seed=1)
    assert [s.turn for s in summary] == [1, 2, 3, 4]
    rng = np.random.default_rng(1)
    for s in summary:
        sel = turns == s.turn
        assert s.n == 50 and s.n_clusters == 50
        assert s.mean == pytest.approx(values[sel].mean())
        assert s.median == pytest.approx(np.median(values[sel]))
        assert s.ci == cluster_bootstrap_ci(values[sel], conv[sel], n_resamples=500, seed=rng)
    means = [s.mean for s in summary]
    assert means == sorted(means, reverse=True)
    assert summary[0].ci.lo > summary[-1].ci.hi


def test_nan_dropped_and_validation() -> None:
    values, turns, conv = _conversations()
    values[0] = np.nan
    first = by_turn_summary(values, turns, conv, n_resamples=100)[0]
    assert first.n == 49 and first.to_dict()["ci"]["method"] == "cluster_percentile"
    with pytest.raises(ValueError):
        by_turn_summary(values, turns[:-1], conv)
    with pytest.raises(ValueError):
        by_turn_summary(values, turns.astype(float), conv)
