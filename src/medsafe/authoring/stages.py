"""Ask a model a batch of prompts through medsafe's pipeline, as one stored run per stage.

Each stage of ``generate`` and ``curate`` (rules, items, validation, rationales, judging) is a
run in the store whose id is derived from the model and every prompt
(``author-STAGE-HASH``): running the stage again resumes that run, so a finished stage asks
nothing, a stage killed with ``kill -9`` asks only what it had not received (the runner's
journal), and any prompt asked before under another run is answered from the request cache.
The runs appear in ``medsafe runs`` like any other and can be deleted with ``medsafe delete``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medsafe.pipeline import RunOptions, run_options_async
from medsafe.schema import Item, Message, ModelParams
from medsafe.store.sqlite import Store


@dataclass(frozen=True)
class ModelTarget:
    """A model to ask: spec (``KIND/NAME`` or a config name) and how to reach it."""

    spec: str
    base_url: str | None = None
    config: Path | None = None
    params: ModelParams = field(default_factory=lambda: ModelParams(max_tokens=2048))
    concurrency: int = 8
    timeout_s: float = 120.0
    retries: int = 3
    phi_check: str | None = None
    allow_phi: bool = False
    """Send prompts with identifiers to a remote endpoint anyway (recorded with the run)."""
    """Egress policy for the prompts (``off``, ``warn``, ``block``; None: block when the
    endpoint is remote and a prompt holds personal identifiers), as ``medsafe run --phi-check``."""


@dataclass(frozen=True)
class Prompt:
    """One request of a stage: a stable id and its messages."""

    id: str
    system: str
    user: str
    language: str = "en"


@dataclass(frozen=True)
class Reply:
    """A stage's answer to one prompt: the text, or the cause of failure."""

    text: str | None
    error: str | None = None


def stage_run_id(stage: str, target: ModelTarget, prompts: Sequence[Prompt]) -> str:
    """``author-STAGE-`` and 16 hex digits of the hash of the model and every prompt."""
    digest = hashlib.sha256(target.spec.encode("utf-8"))
    for p in prompts:
        digest.update(json.dumps([p.id, p.system, p.user], ensure_ascii=False).encode("utf-8"))
    return f"author-{stage}-{digest.hexdigest()[:16]}"


async def ask(
    db: Path,
    stage: str,
    target: ModelTarget,
    prompts: Sequence[Prompt],
    *,
    show_progress: bool = False,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Reply]:
    """Every prompt's reply (by prompt id), asked (or resumed) as one stored run."""
    if not prompts:
        return {}
    items = [
        Item(
            id=p.id,
            suite=f"author-{stage}",
            language=p.language if p.language in ("zh", "ja", "en") else "en",
            kind="open",
            messages=(
                Message(role="system", content=p.system),
                Message(role="user", content=p.user),
            ),
        )
        for p in prompts
    ]
    run_id = stage_run_id(stage, target, prompts)
    options = RunOptions(
        suite=items,
        model=target.spec,
        db=db,
        run_id=run_id,
        base_url=target.base_url,
        config=target.config,
        params=target.params,
        concurrency=target.concurrency,
        timeout_s=target.timeout_s,
        retries=target.retries,
        scorers=(),
        phi_check=target.phi_check,
        allow_phi=target.allow_phi,
        show_progress=show_progress,
        notify=notify,
    )
    await run_options_async(options)
    replies: dict[str, Reply] = {}
    with Store(db) as store:
        for item, transcript in store.iter_transcripts(run_id):
            if transcript.status == "ok":
                replies[item.id] = Reply(transcript.response)
            else:
                replies[item.id] = Reply(None, transcript.error or "model call failed")
    return replies
