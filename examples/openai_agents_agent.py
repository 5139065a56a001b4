"""An OpenAI Agents SDK agent behind turnstop's stop button (docs/agents.md).

Serve it under ``make run`` with a route that names it::

    TURNSTOP_MODELS='{"routes": {"agent": {"provider": "external", "queue": "openai-agents",
                      "handler": "examples.openai_agents_agent:handle"}}}' make run

With ``TURNSTOP_EXAMPLE_OPENAI_AGENTS_MODEL`` set (a model name the SDK's default provider
serves; ``OPENAI_BASE_URL`` may point it at any OpenAI-compatible server) the agent uses that
model; otherwise a deterministic local model (the SDK's own ``agents.testing.ScriptedModel``,
offline, as the tests run it) that calls ``slow_lookup`` once, then answers (asked for a "slow
model", it streams a 2,000-word answer instead, a word every 50 ms).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

from agents import Agent, RunContextWrapper, Usage, function_tool, set_tracing_disabled
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from openai.types.responses import Response, ResponseCreatedEvent, ResponseTextDeltaEvent

from examples import approvals
from turnstop.worker import WorkerTurn
from turnstop.worker import openai_agents as turnstop_openai_agents

LOOKUP_SECONDS = 300.0  # the tool's work: only a cancel ends it (a "quick" one: none)
TOOL_RUNNING = threading.Event()  # what the tool is doing, for the in-process tests
TOOL_STOPPED = threading.Event()
SLOW_MODEL_WORDS, SLOW_MODEL_WORD_S = 2000, 0.05  # "slow model": 100 s of answer, unless stopped


@function_tool
async def slow_lookup(ctx: RunContextWrapper[WorkerTurn], query: str) -> str:
    """Look something up; takes minutes, and stops as soon as the turn is cancelled."""
    TOOL_RUNNING.set()
    try:
        await asyncio.sleep(0 if "quick" in query else LOOKUP_SECONDS)  # cancelled with the run's tasks
    except asyncio.CancelledError:
        TOOL_STOPPED.set()
        raise
    return f"the answer to {query!r} is 42"


@function_tool
async def send_email(ctx: RunContextWrapper[WorkerTurn], to: str, subject: str) -> str:
    """Send an email. A person approves it first (examples/approvals.py)."""
    return approvals.ask_to_send(ctx.context, to, subject)


def _tool_output(call: Any) -> str:
    outputs = [i for i in call.input if isinstance(i, dict) and i.get("type") == "function_call_output"]
    return str(outputs[-1]["output"]) if outputs else ""


async def _slow_answer(call: Any) -> AsyncIterator[Any]:
    started = Response(
        id="resp_slow",
        created_at=0,
        model="local",
        object="response",
        output=[],
        tool_choice="none",
        tools=[],
        top_p=None,
        parallel_tool_calls=False,
        status="in_progress",
    )
    yield ResponseCreatedEvent(type="response.created", response=started, sequence_number=0)
    for i in range(SLOW_MODEL_WORDS):
        await asyncio.sleep(SLOW_MODEL_WORD_S)
        yield ResponseTextDeltaEvent(
            type="response.output_text.delta",
            item_id="m1",
            output_index=0,
            content_index=0,
            delta=f"w{i} ",
            logprobs=[],
            sequence_number=i + 1,
        )


def local_model(prompt: str) -> ScriptedModel:
    """Deterministic: asks for ``slow_lookup`` once, then answers from the tool's result."""
    usage = Usage(requests=1, input_tokens=10, output_tokens=8, total_tokens=18)
    if "slow model" in prompt:
        return ScriptedModel([ModelStep.stream(_slow_answer, usage=usage)])
    email = approvals.EMAIL.search(prompt)
    if email:  # a tool that needs a person's approval, then the words that say so
        return ScriptedModel(
            [
                ModelStep(output=[function_call("send_email", email.groupdict(), call_id="t2")], usage=usage),
                ModelStep(output=[assistant_message(approvals.ASKED)], usage=usage),
            ]
        )
    return ScriptedModel(
        [
            ModelStep(
                output=[
                    assistant_message("Let me look that up. "),
                    function_call("slow_lookup", {"query": prompt}, call_id="t1"),
                ],
                usage=usage,
            ),
            ModelStep.respond(
                lambda call: ModelStep(output=[assistant_message(f"Found it: {_tool_output(call)}")], usage=usage)
            ),
        ]
    )


def agent(prompt: str) -> Agent[WorkerTurn]:
    name = os.environ.get("TURNSTOP_EXAMPLE_OPENAI_AGENTS_MODEL")
    if not name:
        set_tracing_disabled(True)  # offline: no trace export either
    model: Any = name or local_model(prompt)
    return Agent[WorkerTurn](name="turnstop example", model=model, tools=[slow_lookup, send_email])


def handle(turn: WorkerTurn) -> None:
    """The queue's handler: one run per turn, its events streamed into the turn; or, once a
    person approved the email it asked to send (``turn.approval``), the sending."""
    if not approvals.send_approved(turn):
        turnstop_openai_agents.run(agent(turn.input), turn)
