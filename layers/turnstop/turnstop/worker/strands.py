"""Strands Agents behind turnstop (docs/agents.md): run an ``Agent`` for a ``WorkerTurn``.

``run(agent, turn)`` gives the agent the turn's conversation (instructions as its system prompt,
history as its messages), passes turnstop's cancel event as the invocation's ``cancel_signal``
(Strands checks it while the model streams, before each tool, and hands the same event to every
tool as ``tool_context.cancel_signal``), and streams the agent's events into the turn: text as
text, reasoning as thinking, each tool call it makes as a ``[tool]`` line. Its usage (summed over
every model call of the loop) is the turn's. Strands is imported only by routes that use it.
"""

from __future__ import annotations

import threading
from typing import Any

from turnstop.worker import TurnCancelled, WorkerTurn

STATE_KEY = "turnstop_turn"  # the WorkerTurn, in every tool's ``tool_context.invocation_state``


class Forward:
    """A Strands ``callback_handler`` that streams the agent's events into ``turn``."""

    def __init__(self, turn: WorkerTurn) -> None:
        self.turn = turn

    def __call__(self, **event: Any) -> None:
        if self.turn.cancelled:
            return  # the turn has ended: the agent is stopping at its next checkpoint
        try:
            if event.get("data"):
                self.turn.text(event["data"])
            elif event.get("reasoningText"):
                self.turn.thinking(event["reasoningText"])
            elif isinstance(event.get("message"), dict) and event["message"].get("role") == "assistant":
                for block in event["message"].get("content", []):
                    if "toolUse" in block:
                        self.turn.tool_call(block["toolUse"]["name"], block["toolUse"].get("input"))
        except TurnCancelled:
            pass  # the cancel landed between the check and the emit


def messages(turn: WorkerTurn) -> list[dict[str, Any]]:
    """The turn's history as Strands messages."""
    return [{"role": m.role, "content": [{"text": m.content}]} for m in turn.history]


def run(agent: Any, turn: WorkerTurn) -> Any:
    """Run ``agent`` (a ``strands.Agent`` built with ``callback_handler=Forward(turn)``) for ``turn``."""
    if turn.instructions and not agent.system_prompt:
        agent.system_prompt = turn.instructions
    agent.messages = messages(turn)
    result = agent(turn.input, cancel_signal=turn.cancel_event, invocation_state={STATE_KEY: turn})
    usage = result.metrics.accumulated_usage
    if getattr(result, "stop_reason", None) != "cancelled":
        turn.finish(input_tokens=int(usage.get("inputTokens", 0)), output_tokens=int(usage.get("outputTokens", 0)))
    return result


def worker_turn(tool_context: Any) -> WorkerTurn | None:
    """In a tool: the ``WorkerTurn`` it runs for (to ``request_approval``, ``heartbeat``...);
    None outside a turnstop turn."""
    turn = tool_context.invocation_state.get(STATE_KEY)
    return turn if isinstance(turn, WorkerTurn) else None


def cancel_event(tool_context: Any) -> threading.Event | None:
    """In a tool: turnstop's cancel event itself (set by the runtime's check, with no mirroring
    delay); None outside a turnstop turn."""
    turn = worker_turn(tool_context)
    return None if turn is None else turn.cancel_event
