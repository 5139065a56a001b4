"""An approved action carried out by the agent that asked for it (docs/agents.md#human-approval).

A chat reply whose agent (an external route) called ``WorkerTurn.request_approval`` ends asking,
and its action waits, as a planned one does. ``POST /chat/confirm`` claims it (one conditional
write, as for any action) and calls ``carry_out``: the route's handler runs again with
``turn.approval`` set, and what it says is the action's outcome. It runs inside the confirm
request, under the confirm's lease, so it has ``BUDGET_S``; an agent that fails or takes longer
leaves the action claimed, and a confirm after the lease has lapsed tries again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from turnstop.core import errors
from turnstop.core.turn import Turn
from turnstop.providers.base import CallAborted, ModelRequest, UpstreamError
from turnstop.runtime.model import open_call

BUDGET_S = 8.0  # inside the confirm's lease (service.CONFIRM_LEASE_MS)
FAILED = "The action could not be carried out; confirm again to retry"


def carry_out(model_for: Callable[[Turn], object], action: Turn) -> str:
    """Run the agent behind ``action``'s route to carry it out; its text is the outcome."""
    details = action.input["action"]
    approval = {key: details.get(key) for key in ("type", "summary", "confirmation", "params")}
    call = open_call(model_for(action), ModelRequest(input=str(action.input.get("prompt", "")), approval=approval))
    timer = threading.Timer(BUDGET_S, call.abort)
    timer.start()
    text: list[str] = []
    try:
        text.extend(chunk.text for chunk in call if chunk.kind == "text")
    except (CallAborted, UpstreamError):
        raise errors.TurnstopError(FAILED, code="action_failed") from None
    finally:
        timer.cancel()
    return "".join(text).strip() or f"Done: {details.get('summary')}"
