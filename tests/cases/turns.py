"""Helpers for tests that start, run and cancel turns on a store: a turn started the way the
sessions dialect starts one, a scripted model with hooks at chosen words, a quick runner, and
bounded waits for what a keeper publishes on its own cadence."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from tests.cases.fixtures import Env
from turnstop.core import scopes
from turnstop.core.events import Event
from turnstop.core.records import NewTurn
from turnstop.core.scopes import Scope
from turnstop.core.turn import CancelOutcome, CancelRequest, Turn, Usage
from turnstop.dialects.sessions.renderer import RENDERERS, SESSION_KIND, STATELESS_KIND, created_event
from turnstop.idempotency.bindings import KeyBinding
from turnstop.providers.base import Chunk
from turnstop.runtime.keeper import Cadence
from turnstop.runtime.runner import TurnRunner

TENANT = "t1"
LEASE_MS = 30_000


def start(
    env: Env,
    prompt: str = "Write a 10-word note",
    *,
    tenant: str = TENANT,
    session_id: str | None = None,
    idem: KeyBinding | None = None,
    turn_id: str | None = None,
) -> Turn:
    from turnstop.core.ids import new_id

    kind = SESSION_KIND if session_id else STATELESS_KIND
    new = NewTurn(
        id=turn_id or new_id("msg_" if session_id else "resp_"),
        kind=kind,
        tenant=tenant,
        scope=scopes.session(session_id) if session_id else scopes.STATELESS,
        grace_ms=120_000,
        input={"prompt": prompt},
    )
    return env.store.turns.start(new, created_event, idempotency=idem)


class HookModel:
    """Scripted words (after optional thinking chunks) with callbacks at chosen word indexes,
    for deterministic interleavings."""

    def __init__(
        self,
        words: int,
        hooks: Mapping[int, Callable[[], object]] | None = None,
        fail_at: int | None = None,
        thinking: list[str] | None = None,
    ):
        self.words, self.hooks, self.fail_at, self.thinking = words, hooks or {}, fail_at, thinking or []
        self.closed = False

    def stream(self, prompt: str) -> Iterator[Chunk]:
        try:
            for t in self.thinking:
                yield Chunk(t, "thinking")
            for i in range(self.words):
                if i in self.hooks:
                    self.hooks[i]()
                if self.fail_at == i:
                    raise RuntimeError("model exploded")
                yield Chunk(f"w{i} ")
            if self.words in self.hooks:
                self.hooks[self.words]()
        finally:
            self.closed = True


# Tests keep turns quick: look for a cancel every 5 ms, publish every 20 ms.
FAST = Cadence(flush_ms=20, check_ms=5, lease_ms=LEASE_MS)


def runner(
    env: Env,
    model: Any,
    owner: str = "worker-a",
    cadence: Cadence = FAST,
    *,
    upstream: Any = None,
    on_finished: Callable[[Turn, Any], None] | None = None,
) -> TurnRunner:
    """A runner of the sessions dialect's turns with ``model`` (a provider or a scripted model) behind every turn."""
    return TurnRunner(
        env.store,
        lambda turn: model,
        renderers=RENDERERS,
        lease_ms=LEASE_MS,
        owner=owner,
        cadence=cadence,
        on_finished=on_finished,
        upstream=upstream,
    )


def streamed(env: Env, turn_id: str) -> str:
    """The text a turn's readers were sent: its ``response.delta`` events joined."""
    return "".join(e.data.get("delta", "") for e in events(env, turn_id) if e.type == "response.delta")


def eventually(check: Callable[[], Any], what: str, within_s: float = 10.0) -> Any:
    """Poll ``check`` (bounded) until it returns something truthy: for what a keeper publishes
    on its own cadence."""
    deadline = time.monotonic() + within_s
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)
    return value


def until_ended(env: Env, turn_id: str, within_s: float = 10.0) -> None:
    """Block (bounded) until the turn has ended: a model that calls this from a hook goes
    silent after a cancel, so the test knows exactly what it produced before the end."""
    eventually(
        lambda: (head := env.store.turns.head(turn_id)) is not None and head.terminal,
        f"turn {turn_id} to end",
        within_s,
    )


def cancel_then_go_quiet(env: Env, turn_id: str) -> Callable[[], CancelOutcome]:
    def hook() -> CancelOutcome:
        outcome = cancel(env, turn_id)
        until_ended(env, turn_id)
        return outcome

    return hook


def publish(env: Env, turn: Turn, owner: str, *texts: str) -> Turn:
    """What a keeper publishes: the next events (text deltas) as one chunk, and the head moved."""
    evs = [Event(turn.seq + 1 + i, "response.delta", {"id": turn.id, "delta": t}) for i, t in enumerate(texts)]
    usage = Usage(turn.usage.input_tokens, turn.usage.output_tokens + len(texts))
    seq = env.store.turns.publish(turn.id, owner, evs, turn.seq, usage, LEASE_MS)
    return turn.replace(seq=seq, usage=usage)


def cancel(env: Env, turn_id: str, tenant: str = TENANT, scope: Scope | None = None) -> CancelOutcome:
    outcome, _ = env.store.turns.request_cancel(turn_id, tenant=tenant, scope=scope, req=CancelRequest(reason="test"))
    return outcome


def events(env: Env, turn_id: str) -> list[Any]:
    head = env.store.turns.get(turn_id)
    assert head is not None
    return env.store.turns.read_events(turn_id, 0, head.seq)


def ledger_kinds(env: Env, turn_id: str, tenant: str = TENANT) -> list[str]:
    return sorted(e["kind"] for e in env.store.ledger.entries(tenant, turn_id))


def die_after_two_words(env: Env, turn: Turn) -> None:
    """Worker A claims the turn, commits two words, then vanishes without finishing."""
    claimed = env.store.turns.claim(turn.id, "worker-a", LEASE_MS)
    assert publish(env, claimed, "worker-a", "w0 ", "w1 ").seq == 3
