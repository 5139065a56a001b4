"""The OpenAI Agents SDK behind turnstop (docs/agents.md): run an ``Agent`` for a ``WorkerTurn``.

``run(agent, turn)`` runs the agent streamed (``Runner.run_streamed``) on an event loop of its
own, with the turn's history and input as its input items, the turn's instructions where the
agent has none, and the ``WorkerTurn`` as the run's context (a tool reads
``ctx.context.cancel_event``). The moment turnstop's cancel event is set it cancels the run
(``RunResultStreaming.cancel()``): the SDK cancels the run's tasks, so a model call or an
awaiting tool stops where it is. Text and reasoning deltas and each tool call stream into the
turn; the run's usage (summed over its model calls) is the turn's. The SDK is imported only here.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from turnstop.worker import TurnCancelled, WorkerTurn

TEXT_DELTA = "response.output_text.delta"
THINKING_DELTAS = ("response.reasoning_text.delta", "response.reasoning_summary_text.delta")


def input_items(turn: WorkerTurn) -> list[dict[str, str]]:
    """The turn's conversation as the SDK's input items (Responses API messages)."""
    return [*({"role": m.role, "content": m.content} for m in turn.history), {"role": "user", "content": turn.input}]


def forward(turn: WorkerTurn, event: Any) -> None:
    """One of the run's stream events into the turn."""
    if event.type == "raw_response_event":
        data = event.data
        if data.type == TEXT_DELTA:
            turn.text(data.delta)
        elif data.type in THINKING_DELTAS:
            turn.thinking(data.delta)
    elif event.type == "run_item_stream_event" and event.name == "tool_called":
        raw = event.item.raw_item
        name = getattr(raw, "name", None) or "tool"
        arguments = getattr(raw, "arguments", None)
        try:
            turn.tool_call(name, json.loads(arguments) if isinstance(arguments, str) else arguments)
        except ValueError:  # arguments that are not JSON: shown as the model wrote them
            turn.tool_call(name, arguments)


async def run_async(agent: Any, turn: WorkerTurn) -> bool:
    """Run ``agent`` for ``turn``; False when the turn's cancel stopped it."""
    from agents import Runner

    if turn.instructions and not agent.instructions:
        agent = agent.clone(instructions=turn.instructions)
    items: Any = input_items(turn)  # the SDK's TResponseInputItem dicts
    result = Runner.run_streamed(agent, items, context=turn)
    try:
        async with turn.on_cancel(result.cancel):
            async for event in result.stream_events():
                forward(turn, event)
    except TurnCancelled:
        return False
    if turn.cancelled:
        return False
    usage = result.context_wrapper.usage
    turn.finish(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
    return True


def run(agent: Any, turn: WorkerTurn) -> bool:
    """``run_async`` on an event loop of its own (the handler's thread has none)."""
    return asyncio.run(run_async(agent, turn))
