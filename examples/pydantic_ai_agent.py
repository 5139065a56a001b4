"""A pydantic-ai agent behind turnstop's stop button (docs/agents.md).

Serve it under ``make run`` with a route that names it::

    TURNSTOP_MODELS='{"routes": {"agent": {"provider": "external", "queue": "pydantic-ai",
                      "handler": "examples.pydantic_ai_agent:handle"}}}' make run

With ``TURNSTOP_EXAMPLE_PYDANTIC_AI_MODEL`` set (a pydantic-ai model name, e.g.
"bedrock:<model id>") the agent uses that model; otherwise a deterministic local model
(``FunctionModel``, offline, as the tests run it) that calls ``slow_lookup`` once, then answers
(asked for a "slow model", it streams a 2,000-word answer instead, a word every 50 ms).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

from pydantic_ai import Agent, ModelRequest, RunContext, ToolReturnPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel

from examples import approvals
from turnstop.worker import WorkerTurn
from turnstop.worker import pydantic_ai as turnstop_pydantic_ai

LOOKUP_SECONDS = 300.0  # the tool's work: only a cancel ends it (a "quick" one: none)
TOOL_RUNNING = threading.Event()  # what the tool is doing, for the in-process tests
TOOL_STOPPED = threading.Event()
SLOW_MODEL_WORDS, SLOW_MODEL_WORD_S = 2000, 0.05  # "slow model": 100 s of answer, unless stopped


async def slow_lookup(ctx: RunContext[WorkerTurn], query: str) -> str:
    """Look something up; takes minutes, and stops as soon as the turn is cancelled."""
    TOOL_RUNNING.set()
    try:
        await asyncio.sleep(0 if "quick" in query else LOOKUP_SECONDS)  # cancelled with the run's task
    except asyncio.CancelledError:
        TOOL_STOPPED.set()
        raise
    return f"the answer to {query!r} is 42"


async def send_email(ctx: RunContext[WorkerTurn], to: str, subject: str) -> str:
    """Send an email. A person approves it first (examples/approvals.py)."""
    return approvals.ask_to_send(ctx.deps, to, subject)


async def local_model(messages: list[Any], info: AgentInfo) -> AsyncIterator[str | dict[int, DeltaToolCall]]:
    """Deterministic: asks for ``slow_lookup`` once, then answers from the tool's result."""
    parts = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts]
    results = [p for p in parts if isinstance(p, ToolReturnPart)]
    prompt = next((str(p.content) for p in reversed(parts) if isinstance(p, UserPromptPart)), "")
    email = approvals.EMAIL.search(prompt)
    if email:  # a tool that needs a person's approval, then the words that say so
        if results:
            yield approvals.ASKED
        else:
            yield {0: DeltaToolCall("send_email", json.dumps(email.groupdict()), tool_call_id="t2")}
        return
    if results:
        words = ["Found", "it:", *str(results[-1].content).split(" ")]
        for i, word in enumerate(words):
            yield word if i == len(words) - 1 else word + " "
        return
    if "slow model" in prompt:  # a long answer, a word at a time: a cancel lands mid-call
        for i in range(SLOW_MODEL_WORDS):
            await asyncio.sleep(SLOW_MODEL_WORD_S)
            yield f"w{i} "
        return
    yield "Let me look that up. "
    yield {0: DeltaToolCall("slow_lookup", json.dumps({"query": prompt}), tool_call_id="t1")}


def agent() -> Agent[WorkerTurn, str]:
    name = os.environ.get("TURNSTOP_EXAMPLE_PYDANTIC_AI_MODEL")
    model: Any = name or FunctionModel(stream_function=local_model)
    built: Agent[WorkerTurn, str] = Agent(model, deps_type=WorkerTurn)
    built.tool(slow_lookup)
    built.tool(send_email)
    return built


def handle(turn: WorkerTurn) -> None:
    """The queue's handler: one run per turn, its events streamed into the turn; or, once a
    person approved the email it asked to send (``turn.approval``), the sending."""
    if not approvals.send_approved(turn):
        turnstop_pydantic_ai.run(agent(), turn)
