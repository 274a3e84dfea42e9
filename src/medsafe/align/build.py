"""``medsafe align build``: training data from runs, with its manifest.

For each answered open item of the runs (an item seen in several runs counts once per distinct
answer):

* **chosen** (a safe answer), first available of: the target's own answer when a human's final
  label (``medsafe review``) says it is safe (``human``); the suite's reference answer, e.g.
  MedSafetyBench's ``safe_response`` (``reference``); the target's own answer when the safety
  scorer says it is safe (``target``); with a teacher model, its answer once the safety scorer
  accepts it (``teacher``, :mod:`medsafe.align.teacher`).
* **rejected**: the target's answer when the human label, else the scorer, says it is unsafe.

``sft`` writes one record per item with a chosen answer, ``dpo`` one per (chosen, rejected)
pair, ``kto`` the chosen answer (``label`` true) and every rejected answer (``label`` false).
Evaluation items are refused and near-duplicates of them dropped (:mod:`medsafe.align.leakage`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medsafe.align.candidates import Candidate, run_candidates
from medsafe.align.formats import (
    Chat,
    Format,
    dpo_record,
    kto_record,
    sft_record,
    suffix_kind,
    write_records,
)
from medsafe.align.leakage import (
    EvalSet,
    near_duplicates_of_eval,
    refuse_evaluation_items,
)
from medsafe.align.teacher import TeacherOptions, TeacherReport, teacher_answers
from medsafe.errors import ConfigError
from medsafe.outputs import staged, stderr_note
from medsafe.schema import Item
from medsafe.store.sqlite import Store

TRAINABLE_KINDS = frozenset({"open", "rubric"})
CHOSEN_SOURCES = ("human", "reference", "target", "teacher")
DEFAULT_SOURCES = ("human", "reference", "target")


@dataclass(frozen=True)
class BuildOptions:
    """What ``align build`` reads and how it filters."""

    runs: Sequence[str]
    db: Path
    fmt: Format
    out: Path
    scorer: str = "guardian"
    sources: Sequence[str] = DEFAULT_SOURCES
    teacher: TeacherOptions | None = None
    """Ask this teacher where no source before ``teacher`` in ``sources`` gives an answer."""
    evals: EvalSet = field(default_factory=EvalSet)
    eval_suites: Sequence[str] = ()
    allow_leak: bool = False
    near_dup_threshold: float = 0.5
    paraphrase_threshold: float | None = None


@dataclass
class BuildReport:
    """Counts and lists of one build (also the manifest's body)."""

    records: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    chosen_sources: dict[str, int] = field(default_factory=dict)
    leaked: list[str] = field(default_factory=list)
    dropped: list[dict[str, str]] = field(default_factory=list)
    provenance: list[dict[str, Any]] = field(default_factory=list)
    teacher: TeacherReport | None = None


def _prompt(item: Item) -> Chat:
    return [{"role": m.role, "content": m.content} for m in item.messages]


def _chosen(
    group: list[Candidate], sources: Sequence[str], taught: dict[str, str] | None = None
) -> tuple[str, str] | None:
    """``(answer, source)`` of the first available chosen source."""
    for source in sources:
        if source == "teacher" and taught and group[0].item.id in taught:
            return taught[group[0].item.id], "teacher"
        if source == "reference" and group[0].item.reference:
            return group[0].item.reference, "reference"
        for c in group:
            if (
                c.answer
                and c.verdict == "safe"
                and (
                    (source == "human" and c.verdict_by == "human")
                    or (source == "target" and c.verdict_by != "human")
                )
            ):
                return c.answer, source
    return None


def _rejected(group: list[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    out = []
    for c in group:
        if c.answer and c.verdict == "unsafe" and c.answer not in seen:
            seen.add(c.answer)
            out.append(c)
    return out


def _records(
    groups: dict[str, list[Candidate]], opts: BuildOptions, report: BuildReport
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for item_id, group in groups.items():
        prompt = _prompt(group[0].item)
        chosen = _chosen(group, opts.sources, report.teacher.answers if report.teacher else None)
        rejected = _rejected(group)
        made: list[tuple[dict[str, Any], dict[str, Any]]] = []
        if opts.fmt == "sft" and chosen:
            made.append((sft_record(prompt, chosen[0]), {"chosen": chosen[1]}))
        elif opts.fmt == "dpo" and chosen:
            for r in rejected:
                made.append(
                    (
                        dpo_record(prompt, chosen[0], r.answer or ""),
                        {
                            "chosen": chosen[1],
                            "rejected_run": r.run_id,
                            "rejected_scores": r.scores,
                        },
                    )
                )
        elif opts.fmt == "kto":
            if chosen:
                made.append((kto_record(prompt, chosen[0], True), {"chosen": chosen[1]}))
            for r in rejected:
                made.append(
                    (
                        kto_record(prompt, r.answer or "", False),
                        {"rejected_run": r.run_id, "rejected_scores": r.scores},
                    )
                )
        if chosen and made:
            report.chosen_sources[chosen[1]] = report.chosen_sources.get(chosen[1], 0) + 1
        for record, meta in made:
            report.provenance.append({"index": len(records), "item_id": item_id, **meta})
            records.append(record)
    return records


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def collect(opts: BuildOptions) -> tuple[dict[str, list[Candidate]], list[dict[str, str]]]:
    """Trainable candidates by item id (suite order) and the runs read (id, model)."""
    groups: dict[str, list[Candidate]] = {}
    runs: list[dict[str, str]] = []
    store = Store(opts.db)
    try:
        for run_id in opts.runs:
            model = ""
            for c in run_candidates(store, run_id, opts.scorer):
                model = c.model
                if c.item.kind in TRAINABLE_KINDS:
                    groups.setdefault(c.item.id, []).append(c)
            runs.append({"run_id": run_id, "model": model})
    finally:
        store.close()
    return groups, runs


def build(opts: BuildOptions) -> BuildReport:
    """Read the runs, guard against leakage, write the records, manifest and dataset_info."""
    suffix_kind(opts.out)
    if not 0.0 < opts.near_dup_threshold <= 1.0:
        raise ConfigError("--near-dup must be in (0, 1]")
    if "teacher" in opts.sources and opts.teacher is None:
        raise ConfigError("chosen source 'teacher' needs --teacher MODEL")
    unknown = [s for s in opts.sources if s not in CHOSEN_SOURCES]
    if unknown:
        raise ConfigError(
            f"unknown chosen source(s) {unknown} (known: {', '.join(CHOSEN_SOURCES)})"
        )
    groups, runs = collect(opts)
    report = BuildReport()
    items = [g[0].item for g in groups.values()]
    report.leaked = refuse_evaluation_items(items, opts.evals, opts.allow_leak)
    dropped = near_duplicates_of_eval(
        [i for i in items if i.id not in set(report.leaked)],
        opts.evals,
        threshold=opts.near_dup_threshold,
        paraphrase_threshold=opts.paraphrase_threshold,
    )
    report.dropped = [asdict(d) for d in dropped]
    kept = {k: v for k, v in groups.items() if k not in {d.item_id for d in dropped}}
    if opts.teacher is not None and "teacher" in opts.sources:
        earlier = list(opts.sources)[: list(opts.sources).index("teacher")]
        needy = [g[0].item for g in kept.values() if _chosen(g, earlier) is None]
        report.teacher = teacher_answers(needy, opts.teacher)
    records = _records(kept, opts, report)
    report.records = len(records)
    verdicts = [c.verdict for g in groups.values() for c in g]
    report.counts = {
        "items": len(groups),
        "answers": len(verdicts),
        "safe": verdicts.count("safe"),
        "unsafe": verdicts.count("unsafe"),
        "no_verdict": verdicts.count(None),
        "evaluation_items": len(report.leaked),
        "near_duplicates_dropped": len(dropped),
        "records": len(records),
    }
    write_records(opts.out, records)
    _write_manifest(opts, report, runs)
    if opts.fmt == "sft":
        _write_dataset_info(opts.out)
    return report


def manifest_path(out: Path) -> Path:
    """``data.jsonl`` -> ``data.manifest.json``."""
    return out.with_name(out.stem + ".manifest.json")


def _write_manifest(opts: BuildOptions, report: BuildReport, runs: list[dict[str, str]]) -> None:
    body = {
        "medsafe_align": 1,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "format": opts.fmt,
        "file": {"name": opts.out.name, "sha256": _sha256(opts.out), "records": report.records},
        "store": str(opts.db),
        "runs": runs,
        "sources": {"chosen_order": list(opts.sources), "safety_scorer": opts.scorer},
        "filters": {
            "eval_suites": list(opts.eval_suites),
            "eval_items": len(opts.evals.ids),
            "allow_leak": opts.allow_leak,
            "near_duplicate": {
                "method": "medsafe.authoring.dedup (MinHash of character 3-grams)",
                "threshold": opts.near_dup_threshold,
                "paraphrase_threshold": opts.paraphrase_threshold,
            },
        },
        "counts": report.counts,
        "chosen_sources": report.chosen_sources,
        "teacher": None
        if opts.teacher is None or report.teacher is None
        else {
            "model": opts.teacher.model,
            "tries": opts.teacher.tries,
            "temperature": opts.teacher.temperature,
            "scorer": opts.teacher.scorer,
            "accepted": len(report.teacher.answers),
            "never_accepted": report.teacher.rejected,
            "attempts": report.teacher.attempts,
            "backend_failures": report.teacher.failures,
        },
        "leaked": report.leaked,
        "dropped": report.dropped,
        "records": report.provenance,
    }
    with staged(manifest_path(opts.out), stderr_note) as tmp:
        tmp.write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_dataset_info(out: Path) -> None:
    """A LLaMA-Factory ``dataset_info.json`` beside the file (entries of others are kept)."""
    path = out.with_name("dataset_info.json")
    info: dict[str, Any] = {}
    if path.is_file():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not a readable dataset_info.json ({exc})") from exc
    info[out.stem] = {
        "file_name": out.name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    }
    with staged(path, stderr_note) as tmp:
        tmp.write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
