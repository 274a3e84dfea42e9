"""Suites bundled with medsafe (files under ``medsafe/suites/data/``), opened by name."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"

_BUNDLED: dict[str, tuple[str, str, str]] = {
    "demo": (
        "demo.jsonl",
        "jsonl",
        "medsafe demo suite: 22 short English items for `medsafe demo`, CC-BY-4.0",
    ),
    "starter": (
        "starter.jsonl",
        "jsonl",
        "medsafe starter suite: original items, zh/ja/en, CC-BY-4.0",
    ),
    "benign-control": (
        "benign_control.jsonl",
        "jsonl",
        "benign medical questions (zh/ja/en, 108) where refusing is wrong: over-refusal control",
    ),
    "cn-dual": (
        "cn_dual.jsonl",
        "jsonl",
        "20 zh MCQs labelled cn-ethics / cn-safety (the dual-axis plot's sample), CC-BY-4.0",
    ),
}
"""name -> (file name under data/, loader name, one-line description)."""

DEMO_REDTEAM_SEEDS = DATA_DIR / "demo_redteam_seeds.jsonl"
"""The seed request of ``medsafe demo``'s scripted red-team dialogues (not a suite)."""


def bundled_suites() -> dict[str, tuple[Path, str, str]]:
    """Bundled suites present in this installation: name -> (path, format, description)."""
    return {
        name: (DATA_DIR / file, fmt, description)
        for name, (file, fmt, description) in sorted(_BUNDLED.items())
        if (DATA_DIR / file).is_file()
    }
