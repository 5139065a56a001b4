"""pydantic-ai behind turnstop (docs/agents.md): run an ``Agent`` for a ``WorkerTurn``.

``run(agent, turn)`` runs the agent on an event loop of its own with the turn's instructions and
history, passes the ``WorkerTurn`` as the run's ``deps`` (a tool reads ``ctx.deps.cancel_event``),
and fires a fresh ``CancellationToken`` the moment turnstop's cancel event is set: pydantic-ai
cancels the run's task, so a model call or an awaiting tool stops where it is, and the run
raises ``RunCancelled``. The run's events stream into the turn: text, thinking, and each tool
call as a ``[tool]`` line; the run's usage is the turn's. pydantic-ai is imported only here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from turnstop.worker import TurnCancelled, WorkerTurn


def history(turn: WorkerTurn) -> list[Any]:
    """The turn's earlier messages as pydantic-ai messages."""
    from pydantic_ai import ModelRequest, ModelResponse, TextPart, UserPromptPart

    return [
        ModelRequest(parts=[UserPromptPart(m.content)])
        if m.role == "user"
        else ModelResponse(parts=[TextPart(m.content)])
        for m in turn.history
    ]


def forward(turn: WorkerTurn, event: Any) -> None:
    """One of the run's events into the turn."""
    from pydantic_ai import (
        AgentRunResultEvent,
        FunctionToolCallEvent,
        PartDeltaEvent,
        PartStartEvent,
        TextPart,
        TextPartDelta,
        ThinkingPart,
        ThinkingPartDelta,
    )

    if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart | ThinkingPart):
        (turn.text if isinstance(event.part, TextPart) else turn.thinking)(event.part.content)
    elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
        turn.text(event.delta.content_delta)
    elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, ThinkingPartDelta):
        turn.thinking(event.delta.content_delta or "")
    elif isinstance(event, FunctionToolCallEvent):
        turn.tool_call(event.part.tool_name, event.part.args_as_dict())
    elif isinstance(event, AgentRunResultEvent):
        usage = event.result.usage
        turn.finish(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)


async def run_async(agent: Any, turn: WorkerTurn) -> bool:
    """Run ``agent`` for ``turn``; False when the turn's cancel stopped it."""
    from pydantic_ai import CancellationToken
    from pydantic_ai.exceptions import RunCancelled

    token = CancellationToken()
    try:
        async with (
            turn.on_cancel(token.cancel),
            agent.run_stream_events(
                turn.input,
                message_history=history(turn),
                instructions=turn.instructions,
                deps=turn,
                cancellation_token=token,
            ) as events,
        ):
            async for event in events:
                forward(turn, event)
        return True
    except (RunCancelled, TurnCancelled):
        return False


def run(agent: Any, turn: WorkerTurn) -> bool:
    """``run_async`` on an event loop of its own (the handler's thread has none)."""
    return asyncio.run(run_async(agent, turn))
