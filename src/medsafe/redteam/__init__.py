"""Multi-turn red-teaming: strategies as data, attackers, the dialogue suite builder, per-turn
statistics and strategy discovery. Formats, metrics and citations: docs/redteam.md."""
