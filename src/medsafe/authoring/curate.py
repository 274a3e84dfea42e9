"""``medsafe curate``: chain-of-thought rationales scored against a rubric until reviewers agree.

For every item with a known answer (an MCQ key, or an open item's ``reference``), round by round:

1. a model writes a rationale (from round 2 on, with the reviewers' feedback in the prompt), or
   a reviewer's edited rationale is taken as it is (with ``suite_rationales``, round 1 takes an
   item's own ``metadata.rationale``, such as ``medsafe generate`` writes for its MCQs);
2. every LLM judge scores it on each rubric criterion (:mod:`medsafe.authoring.rubric`) with
   feedback; every expert labels it in the round's review file (``round-N.review.jsonl``, the
   review workbench's ``medsafe-review/1`` format: one ordinal field per criterion; a label's
   ``rationale`` is the feedback and an optional ``edit`` replaces the rationale next round);
3. **consensus**: ``k`` reviews (default: every reviewer) whose scores on every criterion lie
   within ``margin`` of each other (the largest such group; its mean decides); else an
   ``adjudication`` line of the review file, or the ``adjudicator`` model, decides; else the
   item is revised. Decided scores (the reviewers' mean, or the
   adjudicator's) that reach every criterion's ``pass`` accept the rationale; otherwise it is
   revised with the feedback;
4. an item still open after ``max_rounds`` is ``unresolved``.

Every round is kept (rationale, who wrote it, each review with who, scores and feedback, the
decision and why). Model stages go through :func:`medsafe.authoring.stages.ask` (cached,
resumable), and expert labels are read from the files each time, so running the command again
after reviewers have added labels continues where it waited.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from medsafe.authoring.curate_model import (
    CurateOptions,
    CurateOutcome,
    Decision,
    Review,
    Round,
    load_curation_items,
    question_of,
)
from medsafe.authoring.curate_reviews import (
    read_labels,
    workbench_labels,
    write_review_file,
)
from medsafe.authoring.prompts import (
    FEEDBACK_BLOCK,
    JUDGE_SYSTEM,
    JUDGE_USER,
    LANGUAGE_NAMES,
    RATIONALE_SYSTEM,
    RATIONALE_USER,
    fill,
)
from medsafe.authoring.replies import json_object
from medsafe.authoring.rubric import Rubric
from medsafe.authoring.stages import Prompt, Reply, ask, stage_run_id
from medsafe.errors import ConfigError
from medsafe.schema import Item

__all__ = ["CurateOptions", "CurateOutcome", "Review", "Round", "curate", "load_curation_items"]


def _judge_prompts(rubric: Rubric, pending: Sequence[tuple[Item, Round]]) -> list[Prompt]:
    system = fill(JUDGE_SYSTEM, criteria=rubric.describe())
    prompts = []
    for item, rnd in pending:
        question, answer = question_of(item)
        user = fill(JUDGE_USER, question=question, answer=answer, rationale=rnd.rationale)
        prompts.append(Prompt(f"{item.id}~r{rnd.round}", system, user, item.language))
    return prompts


def _review(rubric: Rubric, who: str, kind: Any, reply: Reply) -> Review:
    try:
        data = json_object(reply.text if reply.text is not None else None)
        scores = rubric.check(data.get("scores"))
    except ValueError as exc:
        why = reply.error if reply.text is None else str(exc)
        return Review(reviewer=who, kind=kind, error=f"unusable review: {why}")
    feedback = data.get("feedback")
    return Review(
        reviewer=who,
        kind=kind,
        scores=scores,
        feedback=feedback.strip() if isinstance(feedback, str) else "",
    )


def _agree(rubric: Rubric, reviews: Sequence[Review], margin: float) -> list[str]:
    """Criteria on which the reviews differ by more than ``margin`` (empty: they agree)."""
    return [
        c.name
        for c in rubric.criteria
        if max(r.scores[c.name] for r in reviews) - min(r.scores[c.name] for r in reviews) > margin
    ]


def _agreeing(rubric: Rubric, reviews: Sequence[Review], margin: float, need: int) -> list[Review]:
    """The largest group of at least ``need`` reviews that agree within ``margin`` on every
    criterion (the first such group in reviewer order), or [] when there is none."""
    for size in range(len(reviews), max(need, 1) - 1, -1):
        for group in itertools.combinations(reviews, size):
            if not _agree(rubric, group, margin):
                return list(group)
    return []


def _decide(
    options: CurateOptions, rnd: Round, adjudication: Review | None
) -> tuple[Decision | None, str]:
    """The round's decision, or (None, why) when the adjudicator model is needed."""
    rubric = options.rubric
    usable = [r for r in rnd.reviews if r.error is None and r.kind != "adjudicator"]
    failed = [r for r in rnd.reviews if r.error is not None]
    need = options.k or (len(options.judges) + len(options.experts))
    decisive: dict[str, float] | None = None
    if adjudication is not None:
        decisive = {k: float(v) for k, v in adjudication.scores.items()}
        how = f"adjudicated by {adjudication.reviewer}"
    else:
        apart = _agree(rubric, usable, options.margin) if usable else []
        group = _agreeing(rubric, usable, options.margin, need) if len(usable) >= need else []
        if group:
            decisive = {
                c.name: sum(r.scores[c.name] for r in group) / len(group) for c in rubric.criteria
            }
            how = f"{len(group)} of {len(usable)} reviewers agree within {options.margin:g}"
        else:
            why = (
                f"reviewers differ by more than {options.margin:g} on {', '.join(apart)}"
                if apart
                else f"{len(usable)} usable review(s) of {need} needed"
                + (f" ({failed[0].error})" if failed else "")
            )
            return None, why
    rnd.scores = decisive
    below = rubric.passes(decisive)
    if not below:
        return "accepted", how
    return "revise", f"{how}; below pass on {', '.join(below)}"


def _feedback(rnd: Round) -> str:
    parts = [f"{r.reviewer}: {r.feedback}" for r in rnd.reviews if r.feedback]
    parts += [f"{rnd.reason}"]
    return "\n".join(parts)


async def curate(options: CurateOptions) -> CurateOutcome:
    """Run rounds until every item is accepted or unresolved, or experts' labels are awaited."""
    if options.max_rounds < 1:
        raise ConfigError("--max-rounds must be at least 1")
    if not options.judges and not options.experts:
        raise ConfigError("give at least one reviewer: --judge MODEL or --expert NAME")
    if options.suite_rationales and options.review_in == "workbench":
        raise ConfigError("--suite-rationales needs --review-in files (a workbench task reviews "
                          "the rationales the writer model wrote)")  # fmt: skip
    if options.out.exists() and not options.out.is_dir():
        raise ConfigError(f"-o {options.out}: exists and is not a folder")
    items = load_curation_items(options.suite)
    say = options.notify or (lambda _m: None)
    options.out.mkdir(parents=True, exist_ok=True)
    history: dict[str, list[Round]] = {item.id: [] for item in items}
    status: dict[str, Decision] = {item.id: "revise" for item in items}
    outcome = CurateOutcome(history, status)
    for rnd_no in range(1, options.max_rounds + 1):
        todo = [item for item in items if status[item.id] == "revise"]
        if not todo:
            break
        say(f"round {rnd_no}: {len(todo)} item(s)")
        rounds, run_id = await _write_rationales(options, todo, history, rnd_no)
        pending = list(zip(todo, rounds, strict=True))
        for judge in options.judges:
            replies = await ask(
                options.db,
                "judge",
                judge,
                _judge_prompts(options.rubric, pending),
                show_progress=options.show_progress,
                notify=say,
            )
            for item, rnd in pending:
                reply = replies.get(f"{item.id}~r{rnd_no}", Reply(None, "no reply"))
                rnd.reviews.append(_review(options.rubric, judge.spec, "llm", reply))
        adjudications: dict[str, Review] = {}
        if options.experts:
            if options.review_in == "workbench":
                task, labels, adjudications = workbench_labels(options, run_id, rnd_no, pending)
                where = f"review task {task} (medsafe serve, or medsafe review label)"
            else:
                path = options.out / f"round-{rnd_no}.review.jsonl"
                write_review_file(options, rnd_no, pending, path)
                labels, adjudications = read_labels(path, options.rubric, options.experts)
                where = str(path)
            missing = [
                (i.id, e) for i, _ in pending for e in options.experts if (i.id, e) not in labels
            ]
            for item, rnd in pending:
                rnd.reviews.extend(
                    labels[(item.id, e)] for e in options.experts if (item.id, e) in labels
                )
            if missing:
                for item, rnd in pending:
                    history[item.id].append(rnd)
                    status[item.id] = "waiting"
                outcome.waiting_on.append(where)
                say(f"waiting for {len(missing)} expert label(s) in {where}")
                return outcome
        undecided: list[tuple[Item, Round, str]] = []
        for item, rnd in pending:
            decision, reason = _decide(options, rnd, adjudications.get(item.id))
            if decision is None:
                undecided.append((item, rnd, reason))
            else:
                rnd.decision, rnd.reason = decision, reason
        if undecided and options.adjudicator is not None:
            adj = options.adjudicator
            replies = await ask(
                options.db,
                "adjudicate",
                adj,
                _judge_prompts(options.rubric, [(i, r) for i, r, _ in undecided]),
                show_progress=options.show_progress,
                notify=say,
            )
            still = []
            for item, rnd, why in undecided:
                review = _review(
                    options.rubric,
                    adj.spec,
                    "adjudicator",
                    replies.get(f"{item.id}~r{rnd_no}", Reply(None, "no reply")),
                )
                rnd.reviews.append(review)
                if review.error is None:
                    decision, reason = _decide(options, rnd, review)
                    rnd.decision, rnd.reason = decision or "revise", f"{why}; {reason}"
                else:
                    still.append((item, rnd, f"{why}; {review.error}"))
            undecided = still
        for _item, rnd, why in undecided:
            rnd.decision, rnd.reason = "revise", f"no consensus: {why}"
        for item, rnd in pending:
            if rnd.decision == "revise" and rnd_no == options.max_rounds:
                rnd.decision = "unresolved"
                rnd.reason = f"round limit {options.max_rounds} reached: {rnd.reason}"
            history[item.id].append(rnd)
            status[item.id] = rnd.decision
    return outcome


async def _write_rationales(
    options: CurateOptions, todo: Sequence[Item], history: dict[str, list[Round]], rnd_no: int
) -> tuple[list[Round], str]:
    """This round's rationale of every item (a reviewer's edit, else the writer's) and the id
    of the round's rationale run."""
    prompts: list[Prompt] = []
    edits: dict[str, tuple[str, str]] = {}
    for item in todo:
        last = history[item.id][-1] if history[item.id] else None
        edit = next((r for r in (last.reviews if last else []) if r.edit), None)
        given = item.metadata.get("rationale") if options.suite_rationales else None
        if edit is not None:
            edits[item.id] = (str(edit.edit), f"{edit.reviewer} (edit)")
            continue
        if last is None and isinstance(given, str) and given.strip():
            edits[item.id] = (given.strip(), "suite (metadata.rationale)")
            continue
        question, answer = question_of(item)
        feedback = fill(FEEDBACK_BLOCK, feedback=_feedback(last)) if last else ""
        prompts.append(
            Prompt(
                f"{item.id}~r{rnd_no}",
                fill(RATIONALE_SYSTEM, language_name=LANGUAGE_NAMES[item.language]),
                fill(RATIONALE_USER, question=question, answer=answer, feedback=feedback),
                item.language,
            )
        )
    replies = await ask(
        options.db,
        "rationale",
        options.writer,
        prompts,
        show_progress=options.show_progress,
        notify=options.notify,
    )
    rounds = []
    for item in todo:
        if item.id in edits:
            text, author = edits[item.id]
        else:
            reply = replies.get(f"{item.id}~r{rnd_no}", Reply(None, "no reply"))
            text = reply.text if reply.text is not None else ""
            author = options.writer.spec if reply.text is not None else f"failed: {reply.error}"
        rounds.append(Round(round=rnd_no, rationale=text, author=author))
    return rounds, stage_run_id("rationale", options.writer, prompts)
