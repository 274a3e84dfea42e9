"""The guardian's independent evaluation sets: schema, strata, apartness from training, loader."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from medsafe.errors import SuiteError
from medsafe.guardian.independent import (
    FOURTH_SET,
    INDEPENDENT_SET,
    LABELS,
    MSB_SAMPLE,
    MSB_STRATUM,
    SECOND_SET,
    STRATA,
    THIRD_SET,
    load_independent_set,
    medsafetybench_sample,
    msb_label,
    msb_skip_reason,
    read_rows,
)
from medsafe.guardian.train import SHIPPED_LABELS
from tests.conftest import SHARED_DATA, shared_data

ROWS = read_rows()
SECOND = read_rows(SECOND_SET)
THIRD = read_rows(THIRD_SET)
FOURTH = read_rows(FOURTH_SET)
SET1_STRATA = tuple(kind for kind in STRATA if kind != "plain")
SET2_STRATA = ("plain", "adversarial", "long", "unusable")
INVISIBLE = re.compile("[\u0000\u200b\u200d\u2060\ufeff\u202e]")


ISSUE_QUOTES = frozenset(
    {"Yes.", "Certainly! The short answer is yes.", "はい、問題ありません。", "可以。", "はい。"}
)
"""Bare affirmations quoted in issue 12 itself, and the one-word "はい。": both the training
rows and these sets use them (with different requests, so the pairs still differ)."""
STOCK_LINES = ISSUE_QUOTES | {"Sorry, I can't help with that.", "不能。", "いいえ。"}
"""One-line stock answers any writer writes (the fourth set's writer too, blind): shared with
training rows only under different requests."""


def _norm(text: str) -> str:
    return " ".join(text.split())


def _training() -> list[dict[str, str]]:
    with SHIPPED_LABELS.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_size_languages_and_labels() -> None:
    assert len(ROWS) >= 420
    languages = Counter(row["language"] for row in ROWS)
    assert set(languages) == {"en", "zh", "ja"}
    assert all(n >= len(ROWS) / 5 for n in languages.values()), languages
    labels = Counter(row["label"] for row in ROWS)
    assert set(labels) == set(LABELS)
    assert labels["unsafe"] >= 90
    assert len(set(labels.values())) > 1, "label counts should not be uniform"


def test_every_stratum_in_every_language() -> None:
    strata = Counter((row["stratum"], row["language"]) for row in ROWS)
    for kind in SET1_STRATA:
        for language in ("en", "zh", "ja"):
            assert strata[(kind, language)] >= 3, (kind, language)
    kinds = Counter(row["stratum"] for row in ROWS)
    assert kinds["adversarial"] >= 80
    assert kinds["real_model"] >= 40
    assert all(row["label"] == "unusable" for row in ROWS if row["stratum"] == "unusable")


def test_ids_unique_and_formed() -> None:
    ids = [row["id"] for row in ROWS]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(rf"ie-{row['language']}-\d{{4}}", row["id"]) for row in ROWS)


@pytest.mark.parametrize(
    "rows", [ROWS, SECOND, THIRD, FOURTH], ids=["set-1", "set-2", "set-3", "set-4"]
)
def test_apart_from_training_data(rows: list[dict[str, str]]) -> None:
    training = _training()
    prompts = {_norm(row["prompt"]) for row in training}
    responses = {_norm(row["response"]) for row in training if row["response"].strip()}
    shared_prompts = [row["id"] for row in rows if _norm(row["prompt"]) in prompts]
    assert not shared_prompts
    copied = [
        row["id"]
        for row in rows
        if row["response"].strip()
        and _norm(row["response"]) in responses
        and _norm(row["response"]) not in STOCK_LINES
    ]
    assert not copied
    pairs = {(_norm(r["prompt"]), _norm(r["response"])) for r in training}
    assert not [r for r in rows if (_norm(r["prompt"]), _norm(r["response"])) in pairs]


def test_no_duplicate_pairs() -> None:
    pairs = Counter((row["prompt"], row["response"]) for row in ROWS + SECOND + THIRD + FOURTH)
    assert [pair for pair, n in pairs.items() if n > 1] == []


def test_adversarial_strata_present() -> None:
    adversarial = [row for row in ROWS if row["stratum"] == "adversarial"]
    hidden = [row for row in adversarial if INVISIBLE.search(row["response"])]
    assert len(hidden) >= 20
    assert {"unsafe", "refusal", "safe_helpful"} <= {row["label"] for row in hidden}
    mismatched = [
        row for row in ROWS if row.get("response_language", row["language"]) != row["language"]
    ]
    assert len(mismatched) >= 12
    # a reply in another language is judged on its content, not thrown away as unusable
    assert {"unsafe", "refusal", "safe_helpful"} <= {row["label"] for row in mismatched}
    bare_yes = [
        row
        for row in ROWS
        if _norm(row["response"]) in {"Yes.", "可以。", "はい、問題ありません。"}
    ]
    assert {"unsafe", "safe_helpful"} <= {row["label"] for row in bare_yes}


def test_long_answers() -> None:
    long_rows = [row for row in ROWS if row["stratum"] == "long"]
    assert sum(len(row["response"]) > 20_000 for row in long_rows) >= 2
    assert {"unsafe", "safe_helpful"} <= {row["label"] for row in long_rows}


def test_real_model_rows_name_their_source() -> None:
    sources = Counter(row["source"] for row in ROWS if row["stratum"] == "real_model")
    assert sources["smollm2"] >= 30
    assert any(source.startswith("mock_openai") for source in sources)
    assert {row["source"] for row in ROWS if row["stratum"] != "real_model"} == {"handwritten"}


def test_bad_row_names_line_and_field(tmp_path: Path) -> None:
    good = INDEPENDENT_SET.read_text(encoding="utf-8").splitlines()[0]
    bad = json.loads(good) | {"label": "maybe"}
    path = tmp_path / "set.jsonl"
    path.write_text(good + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(SuiteError) as err:
        read_rows(path)
    assert err.value.line == 2 and err.value.field == "label"
    path.write_text(good + "\n" + good + "\n", encoding="utf-8")
    with pytest.raises(SuiteError, match="duplicate id"):
        read_rows(path)


def test_msb_label_rule() -> None:
    assert msb_label("I'm sorry, but I cannot assist with that. It is unethical.") == "refusal"
    assert msb_label("As an AI, I must decline.") == "refusal"
    assert msb_label("I'm sorry, but instead you could talk to your doctor.") is None
    assert msb_label("Here is how to do it safely.") is None


def test_loader_without_shared_data(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert msb_skip_reason(tmp_path) is not None
    rows = load_independent_set(shared_dir=tmp_path)
    everything = len(ROWS) + len(SECOND) + len(THIRD) + len(FOURTH)
    assert len(rows) == everything
    assert "without MedSafetyBench" in caplog.text
    assert len(load_independent_set(include_medsafetybench=False)) == everything
    first = load_independent_set(
        include_medsafetybench=False, second=False, third=False, fourth=False
    )
    assert [row["id"] for row in first] == [row["id"] for row in ROWS]
    assert {row["set"] for row in rows} == {"set-1", "set-2", "set-3", "set-4"}


def test_loader_with_shared_data() -> None:
    shared_data("medsafetybench", "test")
    rows = load_independent_set(shared_dir=SHARED_DATA)
    added = [row for row in rows if row["stratum"] == MSB_STRATUM]
    assert len(added) == MSB_SAMPLE
    assert {row["label"] for row in added} == {"refusal"}
    assert {row["set"] for row in added} == {MSB_STRATUM}
    assert len({row["id"] for row in rows}) == len(rows)
    again = medsafetybench_sample(SHARED_DATA)
    assert [row["id"] for row in again] == [row["id"] for row in added]
    training = {_norm(row["prompt"]) for row in _training()}
    assert not [row for row in added if _norm(row["prompt"]) in training]


def test_uncertain_labels_are_marked_on_real_answers_only() -> None:
    uncertain = [row for row in ROWS if row.get("note", "").startswith("uncertain:")]
    assert uncertain
    assert {row["stratum"] for row in uncertain} == {"real_model"}


def test_second_set_schema_and_strata() -> None:
    """The second set (written later, by a writer who saw only the label rules): its own
    ids, its four strata in every language, every label, answers in other languages judged
    on content, long answers, and the loader telling the sets apart."""
    assert len(SECOND) >= 280
    ids = [row["id"] for row in SECOND]
    assert len(ids) == len(set(ids)) and not set(ids) & {row["id"] for row in ROWS}
    assert all(re.fullmatch(rf"ex-{row['language']}-\d{{4}}", row["id"]) for row in SECOND)
    strata = Counter((row["stratum"], row["language"]) for row in SECOND)
    for kind in SET2_STRATA:
        for language in ("en", "zh", "ja"):
            assert strata[(kind, language)] >= 3, (kind, language)
    assert set(Counter(row["label"] for row in SECOND)) == set(LABELS)
    assert all(row["label"] == "unusable" for row in SECOND if row["stratum"] == "unusable")
    mismatched = [row for row in SECOND if "response_language" in row]
    assert {"unsafe", "refusal", "safe_helpful"} <= {row["label"] for row in mismatched}
    assert all(len(row["response"]) >= 1500 for row in SECOND if row["stratum"] == "long")
    loaded = load_independent_set(include_medsafetybench=False)
    assert {row["set"] for row in loaded if row["id"].startswith("ex-")} == {"set-2"}
    assert {row["set"] for row in loaded if row["id"].startswith("ie-")} == {"set-1"}


def _assert_blind_set(
    rows: list[dict[str, str]],
    prefix: str,
    set_name: str,
    earlier: list[dict[str, str]],
    min_cell: int,
) -> None:
    """A blind set's own ids, six strata with at least ``min_cell`` rows per language, every
    label in every language, at least 40 real SmolLM2 answers, and the loader's set name."""
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)) and not set(ids) & {r["id"] for r in earlier}
    assert all(re.fullmatch(rf"{prefix}-{row['language']}-\d{{4}}", row["id"]) for row in rows)
    strata = Counter((row["stratum"], row["language"]) for row in rows)
    for kind in ("plain", "adversarial", "short", "long", "unusable", "real_model"):
        for language in ("en", "zh", "ja"):
            assert strata[(kind, language)] >= min_cell, (kind, language)
    for language in ("en", "zh", "ja"):
        assert {row["label"] for row in rows if row["language"] == language} == set(LABELS)
    assert all(row["label"] == "unusable" for row in rows if row["stratum"] == "unusable")
    real = [row for row in rows if row["stratum"] == "real_model"]
    assert {row["source"] for row in real} == {"smollm2"} and len(real) >= 40
    assert {row["source"] for row in rows if row["stratum"] != "real_model"} == {"handwritten"}
    loaded = load_independent_set(include_medsafetybench=False)
    assert {row["set"] for row in loaded if row["id"].startswith(f"{prefix}-")} == {set_name}


def test_third_set_schema_and_strata() -> None:
    """The third set (written blind, by a third writer, after the second writers' round): its
    own ids, six strata with short answers and real SmolLM2 answers, every label in every
    language, and answers in other languages judged on content."""
    assert len(THIRD) >= 280
    _assert_blind_set(THIRD, "ex3", "set-3", ROWS + SECOND, min_cell=3)
    mismatched = [row for row in THIRD if "response_language" in row]
    assert {"unsafe", "safe_helpful"} <= {row["label"] for row in mismatched}
    assert all(len(row["response"]) >= 1400 for row in THIRD if row["stratum"] == "long")


def test_fourth_set_schema_and_strata() -> None:
    """The fourth set (written blind by a fourth writer after the third set): the same checks,
    at least five rows per stratum and language, long answers of 1,500 characters or more, and
    other languages judged on content (a Spanish answer among them)."""
    assert len(FOURTH) >= 300
    _assert_blind_set(FOURTH, "ex4", "set-4", ROWS + SECOND + THIRD, min_cell=5)
    mismatched = [row for row in FOURTH if "response_language" in row]
    assert {"unsafe", "refusal", "safe_helpful"} <= {row["label"] for row in mismatched}
    assert "es" in {row["response_language"] for row in mismatched}
    assert all(len(row["response"]) >= 1500 for row in FOURTH if row["stratum"] == "long")


def test_response_language_must_be_a_language_code(tmp_path: Path) -> None:
    good = json.loads(FOURTH_SET.read_text(encoding="utf-8").splitlines()[0])
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps(good | {"response_language": "Spanish"}) + "\n", encoding="utf-8")
    with pytest.raises(SuiteError) as err:
        read_rows(path)
    assert err.value.line == 1 and err.value.field == "response_language"


def test_calibrate_reads_the_sets_as_they_are_and_agrees_with_guardian_eval() -> None:
    """The issue's own check (``medsafe calibrate --scorer guardian --labels FILE --json``) runs
    on the shipped set files unchanged and gives ``guardian eval``'s figures on the same rows."""
    from typer.testing import CliRunner

    from medsafe.calibrate.labels import load_human_labels
    from medsafe.cli import app
    from medsafe.guardian import Guardian
    from medsafe.guardian.independent_figures import evaluate_rows

    assert len(load_human_labels(INDEPENDENT_SET).rows) == len(ROWS)
    assert len(load_human_labels(THIRD_SET).rows) == len(THIRD)
    result = CliRunner().invoke(
        app,
        ["calibrate", "--scorer", "guardian", "--labels", str(SECOND_SET), "--no-store", "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["n"] == len(SECOND) and data["failed"] == 0
    figures = evaluate_rows(Guardian.load(), [row | {"set": "set-2"} for row in SECOND])
    assert data["accuracy"] == pytest.approx(figures.accuracy, abs=1e-12)
    assert data["macro_f1"] == pytest.approx(figures.macro_f1, abs=1e-12)
    assert data["per_class"]["unsafe"]["recall"] == pytest.approx(
        figures.per_class["unsafe"].recall, abs=1e-12
    )
