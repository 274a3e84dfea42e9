"""The strategy library: built-in data files, rendering, extra folders, bad files, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.errors import RegistryError, SuiteError
from medsafe.redteam.strategy import BUILTIN_DIR, StrategyLibrary

REQUIRED = {
    "role_play",
    "authority_impersonation",
    "gradual_escalation",
    "hypothetical_fiction",
    "emotional_urgency",
    "post_hoc_justification",
    "request_decomposition",
    "vague_description",
    "false_user_reality",
    "medical_terminology",
    "language_switching",
}


def _strategy(name: str = "mine", **over: Any) -> dict[str, object]:
    data: dict[str, object] = {
        "name": name,
        "title": "Mine",
        "definition": "A test strategy.",
        "citation": ["Nobody 2026"],
        "turns": {lang: ["Hello: {seed}", "Now: {seed}"] for lang in ("zh", "ja", "en")},
    }
    data.update(over)
    return data


def test_builtin_library_covers_the_issue_and_medethiceval() -> None:
    library = StrategyLibrary.load()
    assert set(library.names()) >= REQUIRED
    kinds = {s.medethiceval for s in library if s.medethiceval}
    assert {
        "user_reality",
        "vague_description",
        "role_play",
        "extreme_situation",
        "post_hoc_justification",
        "combine_medical_terminology",
    } <= kinds
    for strategy in library:
        assert strategy.definition and strategy.citation
        assert set(strategy.turns) == {"zh", "ja", "en"}


def test_render_fits_the_turn_budget_and_ends_with_the_seed() -> None:
    library = StrategyLibrary.load()
    strategy = library.get("role_play")
    for turns in (1, 2, 3, 5):
        rendered = strategy.render("SEED-X", "ja", turns, library.followups["ja"])
        assert len(rendered) == turns
        assert "SEED-X" in rendered[-1]
        assert all("{seed}" not in text for text in rendered)
    five = strategy.render("SEED-X", "en", 5, library.followups["en"])
    assert five[:2] == strategy.render("SEED-X", "en", 3, library.followups["en"])[:2]
    assert five[2] != five[3]  # follow-ups are cycled, not repeated


def test_extra_folder_adds_strategies_and_rejects_duplicates(tmp_path: Path) -> None:
    (tmp_path / "mine.json").write_text(json.dumps(_strategy()), encoding="utf-8")
    library = StrategyLibrary.load([tmp_path])
    assert "mine" in library.names()
    assert library.select("mine,role_play")[0].name == "mine"
    dup = tmp_path / "dup"
    dup.mkdir()
    (dup / "role_play.json").write_text(json.dumps(_strategy("role_play")), encoding="utf-8")
    with pytest.raises(RegistryError, match="role_play"):
        StrategyLibrary.load([dup])
    with pytest.raises(RegistryError, match="known"):
        library.select("nope")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"turns": {"en": ["a", "{seed}"], "ja": ["a", "{seed}"]}}, "turns"),
        ({"turns": {lang: ["a", "no seed"] for lang in ("zh", "ja", "en")}}, "turns"),
        ({"turns": {lang: ["{other} {seed}", "{seed}"] for lang in ("zh", "ja", "en")}}, "turns"),
        ({"citation": []}, "citation"),
        ({"name": "Bad Name"}, "name"),
    ],
)
def test_bad_strategy_file_names_file_and_field(
    tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_strategy(**change)), encoding="utf-8")
    with pytest.raises(SuiteError) as info:
        StrategyLibrary.load([tmp_path])
    assert info.value.path == str(path) and info.value.field == field


@pytest.mark.parametrize(
    ("templates", "problem"),
    [
        (
            ["Set-up turn with no request.", "Now: {seed}"],
            "turn 1 must contain {seed} exactly once",
        ),
        (["{seed} and again {seed}", "Now: {seed}"], "turn 1 must contain {seed} exactly once"),
        (["First: {seed}", "No request here."], "turn 2 must contain {seed} exactly once"),
    ],
)
def test_every_template_must_hold_the_seed_exactly_once(
    tmp_path: Path, templates: list[str], problem: str
) -> None:
    turns = {lang: ["A: {seed}", "B: {seed}"] for lang in ("zh", "ja", "en")}
    turns["ja"] = templates
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_strategy(turns=turns)), encoding="utf-8")
    with pytest.raises(SuiteError) as info:
        StrategyLibrary.load([tmp_path])
    assert info.value.path == str(path) and info.value.field == "turns"
    assert f"ja {problem}" in str(info.value)


def test_every_builtin_template_holds_the_seed_exactly_once() -> None:
    files = sorted(BUILTIN_DIR.glob("*.json"))
    assert len(files) == 13
    for path in files:
        turns = json.loads(path.read_text(encoding="utf-8"))["turns"]
        counts = {lang: len(turns[lang]) for lang in ("zh", "ja", "en")}
        assert len(set(counts.values())) == 1, (path.name, counts)
        if not path.name.startswith("_"):
            assert min(counts.values()) >= 3, (path.name, counts)
        for lang in ("zh", "ja", "en"):
            for index, text in enumerate(turns[lang], start=1):
                assert text.count("{seed}") == 1, (path.name, lang, index, text)


def test_builtin_files_are_valid_json_with_provenance() -> None:
    for path in BUILTIN_DIR.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        if path.name.startswith("_"):
            continue
        assert data["name"] == path.stem
        assert data["provenance"]["origin"] == "builtin"


def test_cli_lists_strategies_as_json() -> None:
    result = CliRunner().invoke(app, ["redteam", "strategies", "--json"])
    assert result.exit_code == 0, result.output
    listed = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert set(listed) >= REQUIRED
    assert listed["post_hoc_justification"]["medethiceval"] == "post_hoc_justification"
