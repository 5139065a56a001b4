"""A Strands agent behind turnstop's stop button (docs/agents.md).

Serve it under ``make run`` with a route that names it::

    TURNSTOP_MODELS='{"routes": {"agent": {"provider": "external", "queue": "strands",
                      "handler": "examples.strands_agent:handle"}}}' make run

then talk to it through any dialect (``turnstop`` CLI, the sessions API, the llm API) and press
stop while its tool runs. With ``TURNSTOP_EXAMPLE_BEDROCK_MODEL`` set (a Bedrock model id) the agent
uses that model; otherwise a deterministic local model (offline, as the tests run it) that calls
the ``slow_lookup`` tool once, then answers (asked for a "slow model", it streams a 2,000-word
answer instead, a word every 50 ms; asked to "send an email to X about Y", it calls
``send_email``, a tool that asks a person's approval first).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

from strands import Agent, ToolContext, tool
from strands.models.model import Model

from examples import approvals
from turnstop.worker import WorkerTurn
from turnstop.worker import strands as turnstop_strands

LOOKUP_SECONDS = 300.0  # the tool's work: long enough that only a cancel ends it (a "quick" one: none)
TOOL_RUNNING = threading.Event()  # what the tool is doing, for the in-process tests
TOOL_SAW_CANCEL: list[str] = []
TOOL_STOPPED = threading.Event()
SLOW_MODEL_WORDS, SLOW_MODEL_WORD_S = 2000, 0.05  # "slow model": 100 s of answer, unless stopped


@tool(context=True)
def slow_lookup(query: str, tool_context: ToolContext) -> str:
    """Look something up; takes minutes, and stops as soon as the turn is cancelled."""
    TOOL_RUNNING.set()
    # turnstop's own event (set by the runtime's cancel check itself); Strands' cancel_signal is
    # set from it too, within Strands' 50 ms mirroring poll
    stop = turnstop_strands.cancel_event(tool_context) or tool_context.cancel_signal
    if stop.wait(0 if "quick" in query else LOOKUP_SECONDS):
        TOOL_SAW_CANCEL.append(query)
        TOOL_STOPPED.set()
        return "stopped: the turn was cancelled"
    return f"the answer to {query!r} is 42"


@tool(context=True)
def send_email(to: str, subject: str, tool_context: ToolContext) -> str:
    """Send an email. A person approves it first (examples/approvals.py)."""
    turn = turnstop_strands.worker_turn(tool_context)
    return "No one to ask for approval: not sent." if turn is None else approvals.ask_to_send(turn, to, subject)


class LocalModel(Model):
    """Deterministic: asks for ``slow_lookup`` once, then answers from the tool's result."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {"model_id": "turnstop-local"}

    def update_config(self, **model_config: Any) -> None:
        self.config.update(model_config)

    def get_config(self) -> Any:
        return self.config

    def structured_output(self, output_model: Any, prompt: Any, system_prompt: Any = None, **kwargs: Any) -> Any:
        raise NotImplementedError("the local example model has no structured output")

    async def stream(
        self, messages: Any, tool_specs: Any = None, system_prompt: Any = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        answered = any("toolResult" in block for m in messages for block in m.get("content", []))
        query = next(
            (b["text"] for m in reversed(messages) if m["role"] == "user" for b in m["content"] if "text" in b), ""
        )
        yield {"messageStart": {"role": "assistant"}}
        email = approvals.EMAIL.search(str(query))
        if email and not answered:  # a tool that needs a person's approval
            yield {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "t2", "name": "send_email"}}}}
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(email.groupdict())}}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "tool_use"}}
        elif email:
            yield {"contentBlockDelta": {"delta": {"text": approvals.ASKED}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "end_turn"}}
        elif "slow model" in str(query):  # a long answer, a word at a time: a cancel lands mid-call
            for i in range(SLOW_MODEL_WORDS):
                await asyncio.sleep(SLOW_MODEL_WORD_S)
                yield {"contentBlockDelta": {"delta": {"text": f"w{i} "}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "end_turn"}}
        elif answered:
            result = next(b["toolResult"] for m in messages for b in m["content"] if "toolResult" in b)
            words = ["Found", "it:", *result["content"][0]["text"].split(" ")]
            for i, word in enumerate(words):
                yield {"contentBlockDelta": {"delta": {"text": word if i == len(words) - 1 else word + " "}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "end_turn"}}
        else:
            yield {"contentBlockDelta": {"delta": {"text": "Let me look that up. "}}}
            yield {"contentBlockStop": {}}
            yield {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "t1", "name": "slow_lookup"}}}}
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps({"query": query})}}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "tool_use"}}
        usage = {"inputTokens": 10, "outputTokens": 8, "totalTokens": 18}
        yield {"metadata": {"usage": usage, "metrics": {"latencyMs": 1}}}


def model() -> Any:
    bedrock = os.environ.get("TURNSTOP_EXAMPLE_BEDROCK_MODEL")
    if bedrock:
        from strands.models.bedrock import BedrockModel

        return BedrockModel(model_id=bedrock)
    return LocalModel()


def handle(turn: WorkerTurn) -> None:
    """The queue's handler: one fresh agent per turn, its events streamed into the turn; or, once
    a person approved the email it asked to send (``turn.approval``), the sending."""
    if approvals.send_approved(turn):
        return
    agent = Agent(model=model(), tools=[slow_lookup, send_email], callback_handler=turnstop_strands.Forward(turn))
    turnstop_strands.run(agent, turn)
