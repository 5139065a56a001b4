"""External workers (docs/agents.md): a route's turns produced by the platform's own agent code
through ``turnstop.worker``, while turnstop's runner keeps the lease, the cancel check, the
terminal events and billing. A cancel inside a tool call reaches the tool; what the worker
emits after the cancel is refused; a failed or silent worker fails the turn; a lost worker is
settled by the lost-worker rules and never run twice; two runners never run one turn."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from tests.cases.fixtures import Env
from tests.cases.turns import FAST, LEASE_MS, cancel, events, ledger_kinds, publish, start
from turnstop.core.turn import Usage
from turnstop.dialects.sessions.renderer import RENDERERS
from turnstop.providers.base import ModelRequest
from turnstop.providers.config import ModelsConfigError, parse
from turnstop.providers.models import Models
from turnstop.runtime.runner import LeaseHeld, TurnRunner
from turnstop.worker import TurnCancelled, WorkerTurn, serve

ROUTES = {
    "default": "agent",
    "routes": {
        "agent": {"provider": "external", "queue": "test-agent", "idle_timeout_s": 30},
        "quiet": {"provider": "external", "queue": "test-quiet", "idle_timeout_s": 0.2},
    },
}


def runner(env: Env, route: str = "agent", owner: str = "w") -> TurnRunner:
    models = Models(parse(ROUTES), scripted_step_ms=0)
    provider = models.provider(models.routes.routes[route])
    return TurnRunner(
        env.store,
        lambda turn: provider,
        renderers=RENDERERS,
        lease_ms=LEASE_MS,
        owner=owner,
        cadence=FAST,
        upstream=models.upstream,
    )


def texts(env: Env, turn_id: str) -> str:
    return "".join(e.data.get("delta", "") for e in events(env, turn_id) if e.type == "response.delta")


def test_a_worker_streams_its_steps_and_finishes_with_usage_the_billing_rules_price(env: Env) -> None:
    seen: list[Any] = []
    events_seen: list[threading.Event] = []

    @serve("test-agent")
    def agent(turn: WorkerTurn) -> None:
        seen.append((turn.input, turn.cancelled))
        events_seen.append(turn.cancel_event)
        turn.progress("planning")
        turn.tool_call("search", {"q": "keys"})
        for word in ("the ", "cipher ", "key"):
            turn.text(word)
        turn.finish(input_tokens=11, output_tokens=3)

    turn = start(env, "Find the key")
    assert runner(env).handle(turn.id) == "completed"
    assert seen == [("Find the key", False)]  # the full request, no cancel
    assert events_seen[0].is_set()  # the turn has ended: the worker's watchers let go
    # the sessions dialect streams thinking as deltas too: the steps come first, as lines
    assert texts(env, turn.id) == '[progress] planning\n[tool] search {"q": "keys"}\nthe cipher key'
    head = env.store.turns.get(turn.id)
    assert head is not None and head.usage == Usage(11, 3)  # the worker's own count, as a provider's
    assert head.upstream is not None and head.upstream["provider"] == "external"
    assert head.upstream["estimated"] is False
    assert ledger_kinds(env, turn.id) == ["debit", "usage"]  # billed as a built-in completed turn


def test_a_cancel_inside_a_tool_call_reaches_the_tool_and_later_output_is_refused(env: Env) -> None:
    in_tool, outcome = threading.Event(), list[object]()

    @serve("test-agent")
    def agent(turn: WorkerTurn) -> None:
        turn.text("before ")
        turn.tool_call("long_job")
        in_tool.set()
        outcome.append(turn.cancel_event.wait(30))  # the tool watches the signal
        try:
            turn.text("after the cancel")  # a worker that keeps going
        except TurnCancelled:
            outcome.append("refused")

    turn = start(env, "Run the long job")
    done: list[str] = []
    thread = threading.Thread(target=lambda: done.append(runner(env).handle(turn.id)))
    thread.start()
    assert in_tool.wait(30)
    cancel(env, turn.id)
    thread.join(30)
    assert done == ["cancelled"]
    assert outcome[:2] == [True, "refused"]  # the tool saw the cancel; what it emitted next was refused
    evs = events(env, turn.id)
    assert evs[-1].type == "response.cancelled"
    assert "after" not in texts(env, turn.id)
    assert ledger_kinds(env, turn.id) == []  # a cancelled turn bills nothing


def test_a_worker_that_fails_mid_turn_fails_the_turn(env: Env) -> None:
    @serve("test-agent")
    def agent(turn: WorkerTurn) -> None:
        turn.text("half ")
        raise RuntimeError("agent crashed")

    turn = start(env)
    assert runner(env).handle(turn.id) == "failed"
    head = env.store.turns.get(turn.id)
    assert head is not None and head.error is not None
    assert head.error["code"] == "upstream_error" and "test-agent" in head.error["message"]
    assert events(env, turn.id)[-1].type == "response.failed"


def test_a_silent_worker_is_given_up_on_and_told_to_stop(env: Env) -> None:
    told = threading.Event()

    @serve("test-quiet")
    def agent(turn: WorkerTurn) -> None:
        if turn.cancel_event.wait(30):  # hangs, sending nothing, until told to stop
            told.set()

    turn = start(env)
    assert runner(env, "quiet").handle(turn.id) == "failed"
    assert told.wait(30)
    head = env.store.turns.get(turn.id)
    assert head is not None and head.error is not None and head.error["code"] == "upstream_timeout"


def test_two_runners_never_run_one_turn(env: Env) -> None:
    inside, release, runs = threading.Event(), threading.Event(), []

    @serve("test-agent")
    def agent(turn: WorkerTurn) -> None:
        runs.append(turn.input)
        inside.set()
        release.wait(30)
        turn.text("done")

    turn = start(env)
    done: list[str] = []
    first = threading.Thread(target=lambda: done.append(runner(env, owner="a").handle(turn.id)))
    first.start()
    assert inside.wait(30)
    with pytest.raises(LeaseHeld):  # the redelivered message comes back later
        runner(env, owner="b").handle(turn.id)
    release.set()
    first.join(30)
    assert done == ["completed"] and len(runs) == 1


def test_a_lost_worker_is_settled_by_the_lost_worker_rules_and_never_run_again(env: Env) -> None:
    runs: list[str] = []
    serve("test-agent")(lambda turn: runs.append(turn.input))
    turn = start(env)
    claimed = env.store.turns.claim(turn.id, "dead", LEASE_MS)  # its host died after two words
    publish(env, claimed, "dead", "w0 ", "w1 ")
    env.clock.advance(seconds=31)
    assert runner(env, owner="b").handle(turn.id) == "failed"
    evs = events(env, turn.id)
    assert evs[-1].type == "response.failed" and evs[-1].data["error"]["code"] == "worker_lost"
    assert runs == []


def test_the_asyncio_helper_is_set_by_the_cancel() -> None:
    cancel_event = threading.Event()
    turn = WorkerTurn(ModelRequest("x"), lambda item: None, cancel_event)

    async def main() -> bool:
        event = turn.asyncio_event()
        asyncio.get_running_loop().call_soon(cancel_event.set)
        await asyncio.wait_for(event.wait(), 30)
        return turn.cancelled

    assert asyncio.run(main()) is True


@pytest.mark.parametrize(
    ("route", "names"),
    [
        ({"provider": "external"}, "routes.a.queue"),
        ({"provider": "external", "queue": "q", "handler": "m"}, "routes.a.handler"),
    ],
)
def test_an_external_route_needs_a_queue_and_a_module_function_handler(route: dict[str, Any], names: str) -> None:
    with pytest.raises(ModelsConfigError, match=names):
        parse({"routes": {"a": route}})
