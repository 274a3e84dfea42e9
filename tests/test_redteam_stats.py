"""Per-turn statistics: a declining target is detected, a flat one is not (both asserted);
ASR by strategy, the first broken turn, cross-lingual pairs, judge agreement, results --json."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.pipeline import RunOptions, run_evaluation
from medsafe.redteam.build import build_suite
from medsafe.redteam.strategy import StrategyLibrary
from medsafe.schema import Language, ScorerSpec
from medsafe.stats import median_ci
from medsafe.testing.mock_openai import MockConfig, ThreadedMockServer
from tests.redteam_support import PROBE, declining_target, flat_target, noise, user_turns

LIB = StrategyLibrary.load()
STRATEGIES = "role_play,emotional_urgency,vague_description"


def _run(
    tmp_path: Path,
    responder: Callable[[list[dict[str, Any]]], str],
    languages: tuple[Language, ...] = ("en",),
    n_seeds: int = 30,
) -> dict[str, Any]:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("".join(f"harmful request number {i}\n" for i in range(n_seeds)), "utf-8")
    suite = tmp_path / "suite.jsonl"
    build_suite(
        seeds, suite, library=LIB, strategies=LIB.select(STRATEGIES), languages=list(languages)
    )
    with ThreadedMockServer(MockConfig(responder=responder)) as server:
        outcome = run_evaluation(
            RunOptions(
                suite=str(suite),
                model="openai/t",
                base_url=server.base_url,
                db=tmp_path / "db",
                run_id="r",
                concurrency=16,
                scorers=(ScorerSpec(name=PROBE),),
            )
        )
    return outcome.results.model_dump(mode="json")


def test_a_target_that_complies_more_each_turn_shows_a_significant_decline(
    tmp_path: Path,
) -> None:
    summary = _run(tmp_path, declining_target)
    assert summary["turn_metric"] == f"{PROBE}:jury"
    means = [row["mean"] for row in summary["by_turn"]]
    assert [row["turn"] for row in summary["by_turn"]] == [1, 2, 3]
    assert means[0] > means[1] > means[2]
    assert all(row["n"] == 90 and row["ci95"][0] <= row["mean"] <= row["ci95"][1]
               for row in summary["by_turn"])  # fmt: skip
    wilcoxon = summary["decline"]["first_vs_last"]
    assert wilcoxon["p"] < 1e-6 and wilcoxon["effect_size"] < -0.9
    assert wilcoxon["median_first"] > wilcoxon["median_last"]
    friedman = summary["decline"]["across_turns"]
    assert friedman["p"] < 1e-6 and friedman["effect_size"] > 0.5
    assert summary["asr"]["value"] == 1.0  # turn 3 scores 2-4 < 5 everywhere
    assert set(summary["asr_by_strategy"]) == set(STRATEGIES.split(","))
    first_break = summary["first_break"]["by_turn"]  # turn 2 scores 5-7, the jury 4-7
    assert set(first_break) == {"2", "3"} and sum(first_break.values()) == 90


def test_a_flat_target_shows_no_decline_and_no_attack_success(tmp_path: Path) -> None:
    summary = _run(tmp_path, flat_target)
    wilcoxon = summary["decline"]["first_vs_last"]
    friedman = summary["decline"]["across_turns"]
    assert wilcoxon["p"] > 0.05 and abs(wilcoxon["effect_size"]) < 0.3
    assert friedman["p"] > 0.05 and friedman["effect_size"] < 0.1
    assert summary["asr"]["value"] == 0 and summary["first_break"]["never"] == 90
    assert summary["asr"]["ci95"][1] < 0.05


def test_per_judge_metrics_and_their_agreement_are_reported(tmp_path: Path) -> None:
    summary = _run(tmp_path, declining_target, n_seeds=10)
    metrics = summary["turn_metrics"]
    assert set(metrics) == {f"{PROBE}:a", f"{PROBE}:b", f"{PROBE}:jury"}
    agreement = summary["judge_agreement"][PROBE]
    assert agreement["judges"] == ["a", "b"] and agreement["n_turns"] == 90
    pair = agreement["pairs"]["a~b"]
    assert pair["spearman"]["statistic"] > 0.9 and pair["disagreement_share"] == 0.0
    assert agreement["krippendorff_alpha_ordinal"] > 0.8


def _less_safe_in_japanese(messages: list[dict[str, Any]]) -> str:
    text = messages[-1]["content"]
    japanese = any("\u3040" <= ch <= "\u30ff" for ch in text)
    base = 4 if japanese else 8
    return f"[safety={base + noise(text) % 2}] turn {user_turns(messages)}"


def test_cross_lingual_pairs_by_seed_detect_a_language_gap(tmp_path: Path) -> None:
    summary = _run(tmp_path, _less_safe_in_japanese, languages=("en", "ja"), n_seeds=12)
    block = summary["cross_lingual"]["en-ja"]
    assert block["n_pairs"] == 36
    assert block["last_turn_wilcoxon"]["p"] < 1e-4
    assert block["mean_difference"]["delta"] < -3 and block["mean_difference"]["of"] == "ja - en"
    assert block["asr"] == {"en": 0.0, "ja": 1.0}
    assert block["held_mcnemar"]["p"] < 1e-4
    assert summary["asr_by_language"]["ja"]["value"] == 1.0


def test_results_json_includes_the_dialogue_blocks(tmp_path: Path) -> None:
    _run(tmp_path, declining_target, n_seeds=4)
    result = CliRunner().invoke(app, ["results", "r", "--db", str(tmp_path / "db"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("by_turn", "decline", "asr_by_strategy", "asr_by_category", "first_break"):
        assert key in data
    assert {"n", "mean", "median", "ci95"} <= set(data["by_turn"][0])
    assert {"test", "statistic", "p", "effect_size"} <= set(data["decline"]["first_vs_last"])


def test_a_run_without_dialogues_has_no_dialogue_blocks(tmp_path: Path) -> None:
    from medsafe.results import load_results
    from tests.conftest import create_run, make_mcq, make_spec

    create_run(tmp_path / "db", make_spec("m", "openai/x"), [make_mcq(1)])
    results = load_results(tmp_path / "db", "m")
    assert results.by_turn is None and results.dialogues is None and not results.turn_metrics


@pytest.mark.parametrize("n", [6, 7, 10, 31, 200])
def test_median_ci_matches_scipy_quantile_test(n: int) -> None:
    x = np.random.default_rng(n).normal(size=n)
    ours = median_ci(x)
    ref = sps.quantile_test(x, q=0.0, p=0.5).confidence_interval(0.95)
    assert (ours.lo, ours.hi) == (float(ref.low), float(ref.high))


def test_median_ci_is_unbounded_when_n_is_too_small() -> None:
    ci = median_ci([1.0, 2.0, 3.0])
    assert ci.lo == float("-inf") and ci.hi == float("inf")
    assert np.isnan(median_ci([]).lo)


@pytest.mark.parametrize(("a", "na", "b", "nb"), [(18, 20, 10, 20), (0, 15, 3, 40), (5, 5, 0, 9)])
def test_proportion_difference_is_newcombes_hybrid_of_two_wilson_intervals(
    a: int, na: int, b: int, nb: int
) -> None:
    from medsafe.stats import proportion_difference, wilson

    est = proportion_difference(a, na, b, nb)
    pa, pb = a / na, b / nb
    wa, wb = wilson(a, na), wilson(b, nb)
    lo = pa - pb - np.sqrt((pa - wa.lo) ** 2 + (wb.hi - pb) ** 2)
    hi = pa - pb + np.sqrt((wa.hi - pa) ** 2 + (pb - wb.lo) ** 2)
    assert est.value == pytest.approx(pa - pb)
    assert est.ci.lo == pytest.approx(lo) and est.ci.hi == pytest.approx(hi)
