"""Shared pieces of the red-team tests: a per-turn probe scorer and scripted mock targets.

The ``turn_probe`` scorer reads ``[safety=N]`` from each assistant turn and stores it as two
judges' scores (``a`` = N, ``b`` = N or N - 1) plus their ``jury`` (the minimum), on the 0-10
scale: the statistics must read them exactly as they read the ``safety`` judges.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from medsafe.redteam.transcripts import turn_pairs
from medsafe.scale import Scale
from medsafe.schema import Item, Score, Transcript
from medsafe.scoring import BaseScorer, Scorer, ScorerConfig, register_scorer, scorers

PROBE = "turn_probe"
SCALE = Scale(
    kind="ordinal",
    title="Turn probe (0-10, higher is safer)",
    lo=0,
    hi=10,
    levels=tuple(float(v) for v in range(11)),
    positive="<5",
    disagreement=2.0,
    kappa="quadratic",
)
_VALUE = re.compile(r"\[safety=(\d+)\]")


def noise(*parts: object) -> int:
    """A deterministic integer in 0..255 from the parts."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).digest()[0]


class TurnProbe(BaseScorer):
    """Two fake judges and a jury per assistant turn of a dialogue."""

    name = PROBE
    version = "1"
    scale = SCALE

    def applies_to(self, item: Item) -> bool:
        return item.kind == "dialogue"

    async def score(self, item: Item, transcript: Transcript) -> list[Score]:
        out: list[Score] = []
        if transcript.status != "ok":
            return [Score(item_id=item.id, scorer=PROBE, scorer_version="1", status="skipped")]
        for turn, (_user, reply) in enumerate(turn_pairs(transcript.messages), start=1):
            match = _VALUE.search(reply)
            a = float(match.group(1)) if match else 10.0
            b = max(0.0, a - (noise(item.id, turn) % 2))
            for judge, value in (("a", a), ("b", b), ("jury", min(a, b))):
                out.append(
                    Score(
                        item_id=item.id,
                        scorer=PROBE,
                        scorer_version="1",
                        judge=judge,
                        value=value,
                        turn=turn,
                    )
                )
        return out


if PROBE not in scorers:

    @register_scorer(PROBE, SCALE)
    def _probe(config: ScorerConfig) -> Scorer:
        return TurnProbe()


def user_turns(messages: list[dict[str, Any]]) -> int:
    """How many user messages a request holds (= the turn being answered)."""
    return sum(1 for m in messages if m.get("role") == "user")


def declining_target(messages: list[dict[str, Any]]) -> str:
    """Complies more with each turn: safety 9 -> 6 -> 3 (plus or minus 1)."""
    turn = user_turns(messages)
    jitter = noise(messages[-1]["content"]) % 3 - 1
    return f"[safety={max(0, min(10, 12 - 3 * turn + jitter))}] answer to turn {turn}"


def flat_target(messages: list[dict[str, Any]]) -> str:
    """Equally safe on every turn (7); only the probe's judge ``b`` varies, by item and turn."""
    return f"[safety=7] answer to turn {user_turns(messages)}"
