"""The pydantic-ai integration (examples/pydantic_ai_agent.py, turnstop.worker.pydantic_ai) behind
the runner: the run's text and tool calls stream into the turn and its usage is the turn's; a
cancel while its tool awaits cancels the run's task (the tool sees ``CancelledError``) and the
turn ends cancelled with nothing after it."""

from __future__ import annotations

import threading

from examples import pydantic_ai_agent
from tests.cases.fixtures import Env
from tests.cases.turns import FAST, LEASE_MS, cancel, events, ledger_kinds, start
from turnstop.dialects.sessions.renderer import RENDERERS
from turnstop.providers.config import parse
from turnstop.providers.models import Models
from turnstop.runtime.runner import TurnRunner

ROUTES = {
    "routes": {
        "agent": {"provider": "external", "queue": "pydantic-ai-test", "handler": "examples.pydantic_ai_agent:handle"}
    }
}


def runner(env: Env) -> TurnRunner:
    models = Models(parse(ROUTES), scripted_step_ms=0)
    provider = models.provider(models.routes.default_route)
    return TurnRunner(
        env.store,
        lambda turn: provider,
        renderers=RENDERERS,
        lease_ms=LEASE_MS,
        owner="w",
        cadence=FAST,
        upstream=models.upstream,
    )


def streamed(env: Env, turn_id: str) -> str:
    return "".join(e.data.get("delta", "") for e in events(env, turn_id) if e.type == "response.delta")


def test_a_pydantic_ai_agent_streams_its_steps_and_its_usage_is_the_turns(env: Env) -> None:
    turn = start(env, "quick question")
    assert runner(env).handle(turn.id) == "completed"
    assert streamed(env, turn.id) == (
        'Let me look that up. [tool] slow_lookup {"query": "quick question"}\n'
        "Found it: the answer to 'quick question' is 42"
    )
    head = env.store.turns.get(turn.id)
    assert head is not None and head.upstream is not None and head.upstream["estimated"] is False
    assert head.usage.output_tokens > 0 and head.usage.input_tokens > 0  # the run's own count
    assert ledger_kinds(env, turn.id) == ["debit", "usage"]


def test_a_cancel_while_the_agents_tool_awaits_cancels_the_run_and_ends_the_turn_cancelled(env: Env) -> None:
    pydantic_ai_agent.TOOL_RUNNING.clear()
    pydantic_ai_agent.TOOL_STOPPED.clear()
    turn = start(env, "slow question")
    done: list[str] = []
    thread = threading.Thread(target=lambda: done.append(runner(env).handle(turn.id)))
    thread.start()
    assert pydantic_ai_agent.TOOL_RUNNING.wait(30)  # inside the five-minute tool
    cancel(env, turn.id)
    thread.join(30)
    assert done == ["cancelled"]
    assert pydantic_ai_agent.TOOL_STOPPED.wait(30)  # the tool's await was cancelled with the run
    assert events(env, turn.id)[-1].type == "response.cancelled"
    assert "Found" not in streamed(env, turn.id)
    assert ledger_kinds(env, turn.id) == []
