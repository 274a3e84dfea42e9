"""Tests for medsafe.stats.results (JSON-friendly records)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from medsafe.stats import Estimate, Interval, PairedDiff, TestResult
from medsafe.stats.results import to_jsonable


def test_to_dict_is_strict_json_and_replaces_non_finite() -> None:
    res = TestResult("t", np.float64(1.5), float("nan"), float("inf"), "e", 3, {"k": np.float64(2)})
    d = res.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == {
        "test": "t",
        "statistic": 1.5,
        "p": None,
        "effect_size": None,
        "effect_name": "e",
        "n": 3,
        "extra": {"k": 2.0},
    }
    converted = to_jsonable({"a": np.int64(3), "b": np.array([1.0, np.nan]), "c": np.bool_(True)})
    assert converted == {"a": 3, "b": [1.0, None], "c": True}
    assert type(converted["a"]) is int and type(converted["c"]) is bool


def test_nested_records_and_frozen() -> None:
    est = Estimate(0.5, Interval(0.25, 0.75, "wilson"))
    assert est.to_dict() == {
        "value": 0.5,
        "ci": {"lo": 0.25, "hi": 0.75, "method": "wilson", "level": 0.95},
    }
    assert est.ci.width == 0.5 and est.ci.contains(0.3) and not est.ci.contains(0.8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.value = 1.0  # type: ignore[misc]


def test_paired_diff_unpacks() -> None:
    delta, ci, p = PairedDiff(0.1, Interval(0.0, 0.2, "percentile"), 0.04, 10)
    assert (delta, ci.hi, p) == (0.1, 0.2, 0.04)
