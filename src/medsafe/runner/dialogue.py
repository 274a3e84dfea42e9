"""Turn-by-turn playback of multi-turn dialogue items (red-team conversations).

For each turn the attacker (scripted or an attacker model) writes the user message, the target
answers seeing the whole conversation so far, and the exchange is queued to the store writer
(table ``dialogue_turns``) as soon as it completes. A resumed run reloads those exchanges and
continues at the first turn that has none, so a killed run never asks a finished turn again.

Outcomes: every turn answered -> an ``ok`` transcript; a target (or attacker) call that finally
fails -> a ``failed`` transcript with ``turn K: cause`` (resumed at turn K next time); the
attacker model declining to attack -> flag ``attacker_refused`` (turn, attacker, its text) and
the conversation ends there (``failed`` if no turn was played).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from medsafe.models.base import Backend, ChatRequest
from medsafe.models.retry import RetryPolicy, call_with_retries
from medsafe.redteam.attacker import (
    ATTACKER_PARAMS,
    AdaptiveAttacker,
    AttackContext,
    Attacker,
    AttackerTurn,
    AttackMode,
    Exchange,
    ScriptedAttacker,
    dialogue_budget,
)
from medsafe.redteam.refusal import is_refusal
from medsafe.schema import CallRecord, Item, Message, ModelParams, RunSpec, Transcript, request_hash
from medsafe.store.queries import dialogue_turns
from medsafe.store.sqlite import Store, now_iso
from medsafe.store.writer import StoreWriter

ATTACKER_REFUSED = "attacker_refused"


@dataclass(frozen=True)
class StoredExchange:
    """One exchange as kept in ``dialogue_turns``."""

    seq: int
    turn: int
    kind: str
    user: str
    reply: str
    target: CallRecord
    attacker: CallRecord | None


def load_exchanges(reader: Store, run_id: str, item_id: str) -> list[StoredExchange]:
    """The stored exchanges of one conversation, in order."""
    out = []
    for row in dialogue_turns(reader, run_id, item_id):
        attacker = row.record.get("attacker")
        out.append(
            StoredExchange(
                seq=row.seq,
                turn=row.turn,
                kind=row.kind,
                user=row.user,
                reply=row.reply,
                target=CallRecord.model_validate(row.record["target"]),
                attacker=CallRecord.model_validate(attacker) if attacker else None,
            )
        )
    return out


def base_messages(item: Item, spec: RunSpec) -> tuple[Message, ...]:
    """What precedes the first turn: the item's system messages, else the run's system prompt."""
    system = tuple(m for m in item.messages if m.role == "system")
    if not system and spec.params.system_prompt:
        system = (Message(role="system", content=spec.params.system_prompt),)
    return system


def _pairs(history: Sequence[Exchange]) -> tuple[Message, ...]:
    out: list[Message] = []
    for exchange in history:
        out.append(Message(role="user", content=exchange.user))
        out.append(Message(role="assistant", content=exchange.reply))
    return tuple(out)


@dataclass
class _State:
    history: list[Exchange]
    rejected: list[Exchange]
    calls: list[CallRecord]
    backtracks: int
    seq: int


def _restore(stored: Sequence[StoredExchange]) -> _State:
    state = _State([], [], [], 0, len(stored))
    for exchange in stored:
        pair = Exchange(exchange.user, exchange.reply)
        state.calls.append(exchange.target)
        if exchange.kind == "turn":
            state.history.append(pair)
            state.rejected.clear()
        else:
            state.rejected.append(pair)
            state.backtracks += 1
    return state


class DialoguePlayer:
    """Plays dialogue items of one run against the target backend."""

    def __init__(
        self,
        spec: RunSpec,
        backend: Backend,
        reader: Store,
        writer: StoreWriter,
        *,
        policy: RetryPolicy,
        rng: random.Random,
        attacker_backend: Backend | None = None,
        attacker_params: ModelParams | None = None,
        attack_mode: AttackMode = "crescendo",
    ) -> None:
        self.spec = spec
        self._backend = backend
        self._reader = reader
        self._writer = writer
        self._policy = policy
        self._rng = rng
        self.attacker: Attacker
        if attacker_backend is None:
            self.attacker = ScriptedAttacker()
        else:
            self.attacker = AdaptiveAttacker(
                attacker_backend.model_id,
                partial(self._attacker_call, attacker_backend),
                mode=attack_mode,
                params=attacker_params or ATTACKER_PARAMS,
            )

    async def _call(
        self, backend: Backend, model: str, messages: tuple[Message, ...], params: ModelParams
    ) -> CallRecord:
        key = request_hash(model, messages, params)
        hit = self._reader.cached(key)
        if hit is not None:
            return CallRecord(
                request_hash=key,
                status="ok",
                text=hit.text,
                usage=hit.usage,
                finish_reason=hit.finish_reason,
                cached=True,
            )
        request = ChatRequest(messages=messages, params=params)
        return await call_with_retries(
            backend, request, key, timeout_s=self.spec.timeout_s, policy=self._policy, rng=self._rng
        )

    async def _attacker_call(
        self, backend: Backend, messages: tuple[Message, ...], params: ModelParams
    ) -> CallRecord:
        call = await self._call(backend, backend.model_id, messages, params)
        if call.status == "ok" and not call.cached and call.text is not None:
            row = (
                call.request_hash,
                backend.model_id,
                call.text,
                call.usage.model_dump_json(),
                call.finish_reason,
                now_iso(),
            )
            self._writer.upsert("cache", [row])
        return call

    def _store_exchange(
        self, item: Item, state: _State, turn: int, kind: str, plan: AttackerTurn, call: CallRecord
    ) -> None:
        record = {
            "target": call.model_dump(exclude_defaults=True),
            "attacker": plan.call.model_dump(exclude_defaults=True) if plan.call else None,
        }
        user, reply = plan.text or "", call.text or ""
        row = (self.spec.run_id, item.id, state.seq, turn, kind, user, reply, json.dumps(record))
        self._writer.upsert("dialogue_turns", [row])
        state.seq += 1

    def _transcript(
        self, item: Item, base: tuple[Message, ...], state: _State, error: str | None
    ) -> Transcript:
        return Transcript(
            run_id=self.spec.run_id,
            item_id=item.id,
            model=self.spec.model,
            params=self.spec.params,
            messages=(*base, *_pairs(state.history)),
            calls=tuple(state.calls),
            status="failed" if error else "ok",
            error=error,
        )

    async def play(self, item: Item) -> Transcript:
        """Play (or continue) one conversation; returns its transcript (not yet stored)."""
        base = base_messages(item, self.spec)
        budget = dialogue_budget(item)
        if any(m.role == "assistant" for m in item.messages):
            state = _State([], [], [], 0, 0)
            return self._transcript(
                item, base, state, "a dialogue item's messages may hold only system and user turns"
            )
        state = _restore(load_exchanges(self._reader, self.spec.run_id, item.id))
        attacker = self.attacker
        while (turn := len(state.history) + 1) <= budget:
            context = AttackContext(item, turn, budget, tuple(state.history), tuple(state.rejected))
            plan = await attacker.next_turn(context)
            if plan.text is None:
                return self._stop(item, base, state, turn, plan)
            history = () if attacker.mode == "pair" else _pairs(state.history)
            sent = (*base, *history, Message(role="user", content=plan.text))
            call = await self._call(self._backend, self.spec.model, sent, self.spec.params)
            if call.status != "ok" or call.text is None:
                state.calls.append(call)
                return self._transcript(item, base, state, f"turn {turn}: {call.error}")
            state.calls.append(call)
            if state.backtracks < attacker.backtracks and is_refusal(call.text):
                self._store_exchange(item, state, turn, "backtrack", plan, call)
                state.rejected.append(Exchange(plan.text, call.text))
                state.backtracks += 1
                continue
            self._store_exchange(item, state, turn, "turn", plan, call)
            state.history.append(Exchange(plan.text, call.text))
            state.rejected.clear()
        return self._transcript(item, base, state, None)

    def _stop(
        self, item: Item, base: tuple[Message, ...], state: _State, turn: int, plan: AttackerTurn
    ) -> Transcript:
        if not plan.refused:
            return self._transcript(item, base, state, f"turn {turn}: {plan.error}")
        detail = {"turn": turn, "attacker": self.attacker.name, "text": (plan.raw or "")[:500]}
        self._writer.put_flags(self.spec.run_id, item.id, {ATTACKER_REFUSED: detail})
        error = None if state.history else f"attacker refused to write turn {turn}"
        return self._transcript(item, base, state, error)


def dialogue_player(
    spec: RunSpec,
    backend: Backend,
    reader: Store,
    writer: StoreWriter,
    policy: RetryPolicy,
    rng: random.Random,
    attacker: Backend | None,
) -> DialoguePlayer:
    """The player for a run: adaptive when an attacker backend is given, else scripted."""
    stored = spec.attacker
    return DialoguePlayer(
        spec,
        backend,
        reader,
        writer,
        policy=policy,
        rng=rng,
        attacker_backend=attacker,
        attacker_params=stored.params if stored else None,
        attack_mode=stored.mode if stored else "crescendo",
    )
