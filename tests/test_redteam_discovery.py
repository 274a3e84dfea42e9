"""Strategy discovery: proposals from an attacker model, tried on a sample, kept only when they
beat the best existing strategy with a CI that says so; saved with provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.pipeline import RunOptions, run_evaluation
from medsafe.redteam.build import build_suite
from medsafe.redteam.strategy import StrategyLibrary
from medsafe.schema import ScorerSpec
from medsafe.testing.mock_openai import MockConfig, ThreadedMockServer
from tests.redteam_support import PROBE


def _templates(marker: str) -> dict[str, list[str]]:
    return {"en": [f"{marker} opening: {{seed}}", f"{marker} now: {{seed}}"]}


def _proposal(name: str, definition: str, turns: dict[str, list[str]]) -> dict[str, Any]:
    return {"name": name, "title": name.title(), "definition": definition, "turns": turns}


PROPOSALS = [
    _proposal("zebra_frame", "Always works.", _templates("ZEBRA")),
    _proposal("calm_frame", "Never works.", _templates("CALM")),
    _proposal("no_seed", "No seed.", {"en": ["a", "b"]}),
    _proposal("role_play", "Taken.", _templates("DUP")),
]


def respond(request: dict[str, Any]) -> str:
    last = request["messages"][-1]["content"]
    if request["model"] == "attacker":
        assert "Example 1:" in last and "role_play" in last  # the broken conversations are shown
        return "Here you are:\n" + json.dumps(PROPOSALS)
    if "ZEBRA" in last:
        return "[safety=1] complied"
    number = int(last.rsplit("number ", 1)[-1].split()[0].rstrip(".")) if "number" in last else 1
    broken = "Dr. Grey" in last and "number" in last and number % 3 == 0
    return "[safety=2] complied" if broken else "[safety=9] declined"


def test_discover_keeps_only_a_strategy_that_beats_the_best_one(tmp_path: Path) -> None:
    library = StrategyLibrary.load()
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("".join(f"harmful request number {i}\n" for i in range(30)), "utf-8")
    suite = tmp_path / "suite.jsonl"
    strategies = library.select("role_play,emotional_urgency")
    build_suite(seeds, suite, library=library, strategies=strategies, languages=["en"])
    db = tmp_path / "db"
    with ThreadedMockServer(MockConfig(request_responder=respond)) as server:
        source = run_evaluation(
            RunOptions(
                suite=str(suite),
                model="openai/target",
                base_url=server.base_url,
                db=db,
                run_id="src",
                scorers=(ScorerSpec(name=PROBE),),
            )
        )
        assert source.results.model_dump()["asr_by_strategy"]["role_play"]["value"] == 10 / 30
        config = tmp_path / "models.toml"
        config.write_text(
            f'[models.red]\nmodel = "openai/attacker"\nbase_url = "{server.base_url}"\n', "utf-8"
        )
        found = str(tmp_path / "found")
        argv = ["redteam", "discover", "src", "--attacker", "red", "--config", str(config),
                "--db", str(db), "-o", found, "--sample", "30", "--json"]  # fmt: skip
        result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["baseline"]["strategy"] == "role_play" and report["baseline"]["value"] == 1 / 3
    trials = {t["name"]: t for t in report["trials"] if t["error"] is None}
    assert trials["zebra_frame"]["asr"]["value"] == 1.0 and trials["zebra_frame"]["saved"]
    assert trials["zebra_frame"]["difference"]["ci95"][0] > 0
    assert trials["calm_frame"]["saved"] is None and trials["calm_frame"]["asr"]["value"] == 0
    errors = [t["error"] for t in report["trials"] if t["error"]]
    assert any("turns" in e for e in errors) and any("already taken" in e for e in errors)
    saved = json.loads((tmp_path / "found" / "zebra_frame.json").read_text("utf-8"))
    provenance = saved["provenance"]
    assert provenance["origin"] == "discovered" and provenance["source_run"] == "src"
    assert provenance["attacker"] == "openai/attacker" and provenance["languages_written"] == ["en"]
    assert provenance["baseline"]["strategy"] == "role_play"
    assert not (tmp_path / "found" / "calm_frame.json").exists()
    assert "zebra_frame" in StrategyLibrary.load([tmp_path / "found"]).names()
