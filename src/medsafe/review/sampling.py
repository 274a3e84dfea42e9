"""Which units of a run a review task samples: a rule, read from the store.

Rules (only items with an ``ok`` transcript can be reviewed):

- ``flagged`` -- every flagged item (``suspected_injection``, ``judge_disagreement[:SCORER]``,
  ``attacker_refused``); ``flagged:NAME[,NAME]`` for some flags only;
- ``guardian:LABEL[,LABEL]`` -- items the guardian labelled so on any turn (``unsafe``,
  ``unusable``; ``uncertain`` also takes scores whose ``extra.uncertain`` is true);
- ``stratified:N`` -- a seeded random sample of N items, allocated to categories in proportion
  to their size (largest remainders), drawn without replacement within each;
- ``ids:A,B,C`` -- these items.

Units come back in suite order, except ``stratified`` (shuffled with the seed) so that
reviewers do not see the categories in blocks.
"""

from __future__ import annotations

import random
import sqlite3
from collections import defaultdict

from medsafe.errors import ConfigError
from medsafe.store.pg import engine

FLAGS = (
    "suspected_injection",
    "judge_disagreement",
    "attacker_refused",
    "language_mismatch",
    "hidden_text",
)
"""Flags the ``flagged`` rule knows (the last two are the guardian's)."""
RULES = ("flagged", "guardian", "stratified", "ids")


def _split(rule: str) -> tuple[str, list[str]]:
    name, _, arg = rule.partition(":")
    name = name.strip()
    if name not in RULES:
        raise ConfigError(
            f"--sample {rule!r}: expected flagged[:FLAG,...], guardian:LABEL[,...], "
            "stratified:N or ids:ID[,...]"
        )
    return name, [a.strip() for a in arg.split(",") if a.strip()]


def _reviewable(conn: sqlite3.Connection, run_id: str) -> list[tuple[str, str]]:
    """(item_id, category) of the run's items with an ok transcript, in suite order."""
    rows = conn.execute(
        "SELECT i.item_id, i.category FROM items i JOIN transcripts t ON t.run_id=i.run_id "
        "AND t.item_id=i.item_id WHERE i.run_id=? AND t.status='ok' ORDER BY i.idx",
        (run_id,),
    ).fetchall()
    return [(str(a), str(b)) for a, b in rows]


def _flagged(conn: sqlite3.Connection, run_id: str, names: list[str]) -> set[str]:
    wanted = names or list(FLAGS)
    bad = [n for n in wanted if n not in FLAGS]
    if bad:
        raise ConfigError(f"--sample flagged: unknown flag(s) {bad}; known: {', '.join(FLAGS)}")
    clause = " OR ".join(["flag = ? OR flag LIKE ?"] * len(wanted))
    args = [a for n in wanted for a in (n, f"{n}:%")]
    rows = conn.execute(
        f"SELECT DISTINCT item_id FROM flags WHERE run_id=? AND ({clause})", (run_id, *args)
    ).fetchall()
    return {str(r[0]) for r in rows}


def _guardian(conn: sqlite3.Connection, run_id: str, labels: list[str]) -> set[str]:
    if not labels:
        raise ConfigError("--sample guardian: name labels, e.g. guardian:unsafe,unusable")
    marks = ",".join("?" * len(labels))
    sql = (
        "SELECT DISTINCT item_id FROM scores WHERE run_id=? AND scorer='guardian' "
        "AND judge<>'human' "
        f"AND status='ok' AND (label IN ({marks})"
    )
    if "uncertain" in labels:  # JSON true: 1 in SQLite's json_extract, 'true' in PostgreSQL's
        true = "'true'" if engine(conn) == "postgresql" else "1"
        sql += f" OR json_extract(score_json, '$.extra.uncertain') = {true}"
    rows = conn.execute(sql + ")", (run_id, *labels)).fetchall()
    return {str(r[0]) for r in rows}


def _stratified(units: list[tuple[str, str]], n: int, seed: int) -> list[str]:
    by_cat: dict[str, list[str]] = defaultdict(list)
    for item_id, category in units:
        by_cat[category].append(item_id)
    total = len(units)
    n = min(n, total)
    quotas = {c: n * len(ids) / total for c, ids in by_cat.items()}
    take = {c: int(q) for c, q in quotas.items()}
    order = sorted(by_cat, key=lambda c: (-(quotas[c] - take[c]), c))
    for c in order[: n - sum(take.values())]:
        take[c] += 1
    rng = random.Random(seed)
    picked = [i for c in sorted(by_cat) for i in rng.sample(by_cat[c], take[c])]
    rng.shuffle(picked)
    return picked


def sample_units(conn: sqlite3.Connection, run_id: str, rule: str, seed: int = 0) -> list[str]:
    """The item ids ``rule`` picks from run ``run_id``; ConfigError for a bad rule or an empty
    sample (naming what was looked for)."""
    name, args = _split(rule)
    units = _reviewable(conn, run_id)
    order = [i for i, _c in units]
    if name == "stratified":
        try:
            n = int(args[0]) if len(args) == 1 else -1
        except ValueError:
            n = -1
        if n < 1:
            raise ConfigError(f"--sample {rule!r}: expected stratified:N with N >= 1")
        picked = _stratified(units, n, seed)
    elif name == "ids":
        known = set(order)
        missing = [i for i in args if i not in known]
        if missing:
            raise ConfigError(
                f"--sample ids: run {run_id!r} has no reviewable item {missing[0]!r} "
                "(unknown id, or no ok answer)"
            )
        picked = list(dict.fromkeys(args))
    else:
        chosen = (
            _flagged(conn, run_id, args) if name == "flagged" else _guardian(conn, run_id, args)
        )
        picked = [i for i in order if i in chosen]
    if not picked:
        raise ConfigError(f"--sample {rule!r}: no reviewable unit of run {run_id!r} matches")
    return picked
