"""Scales: what a scorer's values mean, declared once and validated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from medsafe.errors import ConfigError, RegistryError
from medsafe.scale import Scale, parse_rule, unknown_scale
from medsafe.schema import Score
from medsafe.scoring import declared_scales, register_scorer


def test_positive_rules_on_labels_and_thresholds() -> None:
    harm = Scale(kind="ordinal", title="harm", lo=1, hi=5, higher_is_safer=False, positive=">=4")
    assert harm.is_positive(None, 4.0) is True and harm.is_positive(None, 3.0) is False
    assert harm.is_positive("x", None) is None
    guard = Scale(kind="binary", title="g", lo=0, hi=1, positive="unsafe,risky")
    assert guard.is_positive("risky", None) is True and guard.is_positive("refusal", 1.0) is False
    assert Scale(kind="continuous", title="c", lo=0, hi=1).is_positive("unsafe", 0.0) is None
    assert parse_rule("<= 2.5").op == "<=" and parse_rule("<= 2.5").threshold == 2.5
    with pytest.raises(ConfigError):
        parse_rule("=>4")


def test_invalid_scales_are_refused() -> None:
    with pytest.raises(ValidationError, match="below lo"):
        Scale(kind="ordinal", title="t", lo=5, hi=1)
    with pytest.raises(ValidationError, match="outside"):
        Scale(kind="ordinal", title="t", lo=1, hi=5, levels=(0, 1))
    with pytest.raises(ValidationError):
        Scale(kind="ordinal", title="t", lo=1, hi=5, positive=">>4")
    with pytest.raises(ValidationError):
        Scale(kind="ordinal", title="", lo=1, hi=5)


def test_levels_of_measurement_and_share_follow_the_kind() -> None:
    assert Scale(kind="binary", title="b", lo=0, hi=1).alpha_level == "nominal"
    assert Scale(kind="ordinal", title="o", lo=1, hi=5).alpha_level == "ordinal"
    assert Scale(kind="continuous", title="c", lo=-1, hi=1).alpha_level == "interval"
    assert Scale(kind="continuous", title="c", lo=0, hi=1).is_share
    assert not Scale(kind="ordinal", title="o", lo=1, hi=5).is_share
    s = Scale(kind="ordinal", title="o", lo=0, hi=10, higher_is_safer=False)
    assert s.safer(2, 3) and not s.safer(3, 2)
    assert (
        unknown_scale("x", 3.0, -1.0).lo == -1.0
        and "not declared" in unknown_scale("x", 0, 1).title
    )


def test_builtin_scorers_declare_their_scales() -> None:
    assert declared_scales("harmfulness")["harmfulness"].higher_is_safer is False
    assert declared_scales("mcq")["mcq.partial"].null_value == 0.0
    assert declared_scales("guardian")["guardian"].positive == "unsafe"
    assert declared_scales("safety")["safety"].positive == "<5"


def test_a_scorer_must_declare_a_scale_for_its_own_name() -> None:
    other = Scale(kind="binary", title="b", lo=0, hi=1)
    with pytest.raises(RegistryError, match="declares no scale"):
        register_scorer("nameless_scale_scorer", {"something_else": other})


def test_scores_stored_by_0_1_0_with_a_text_scale_still_load() -> None:
    blob = '{"item_id": "i", "scorer": "mcq", "scorer_version": "1", "scale": "binary"}'
    assert Score.model_validate_json(blob).scorer == "mcq"
    with pytest.raises(ValidationError):
        Score.model_validate_json(blob.replace('"scale"', '"unknown_field"'))


def test_stamp_sets_the_scorer_version_on_its_own_score_names_only() -> None:
    from medsafe.scorers.mcq import MCQScorer
    from medsafe.scoring import stamp

    scorer = MCQScorer()
    fresh = Score(item_id="i", scorer="mcq", scorer_version=scorer.version)
    assert stamp(scorer, [fresh]) == [fresh]
    old = [
        Score(item_id="i", scorer="mcq.partial", scorer_version="0"),
        Score(item_id="i", scorer="other", scorer_version="0"),
    ]
    assert [s.scorer_version for s in stamp(scorer, old)] == [scorer.version, "0"]
