"""The llm dialect's responses as they are read: the id rule, who may see one, and the
response object as of its head. Shared by retrieve and by the cancel function (which imports
no request models)."""

from __future__ import annotations

import re
from typing import Any

from turnstop.auth import Principal
from turnstop.core import errors
from turnstop.core.turn import Status, Turn
from turnstop.dialects.llm.renderer import KIND, TERMINAL_TYPES, WIRE_STATUS, response_object
from turnstop.store import Store

RESPONSE_ID = re.compile(r"^resp[-_][a-zA-Z0-9]+$")
MAX_ID_CHARS = 128


def is_id(rid: str) -> bool:
    return len(rid) <= MAX_ID_CHARS and RESPONSE_ID.fullmatch(rid) is not None


def check_id(rid: str) -> None:
    if not is_id(rid):
        raise errors.InvalidRequest(
            f"Invalid 'response_id': '{rid[:80]}'. Expected an ID that begins with 'resp_' or 'resp-' "
            "followed by letters and digits.",
            param="response_id",
            code="invalid_value",
        )


def visible(store: Store, principal: Principal, rid: str) -> Turn | None:
    """The response if this caller may see it (an unstored response is unknown to every read)."""
    turn = store.turns.get_visible(rid, tenant=principal.tenant, kinds=(KIND,), end_user=principal.end_user)
    if turn is None or not turn.input.get("store", True):
        return None
    return turn


def find(store: Store, principal: Principal, rid: str) -> Turn:
    check_id(rid)
    turn = visible(store, principal, rid)
    if turn is None:
        raise errors.NotFound(f"Response with id '{rid}' not found.")
    return turn


def response_json(store: Store, turn: Turn) -> dict[str, Any]:
    """The response object as of the head: the terminal event's object once finished, else
    rendered from the head and the committed output (``cancelled`` once a cancel was accepted)."""
    if turn.terminal and not turn.cancelled_before_start:
        last = store.turns.read_events(turn.id, turn.seq - 1, turn.seq)
        if last and last[-1].type in TERMINAL_TYPES and "response" in last[-1].data:
            obj = dict(last[-1].data["response"])
            if turn.stored_status is Status.COMPLETED and turn.finished_at is not None:
                obj["completed_at"] = turn.finished_at // 1000
            return obj
    # A running turn whose cancel was accepted reads as the cancel answered it: cancelled, with
    # the output and usage committed at acceptance, which is what it ends with (the head's seq
    # and usage no longer move: a publish requires the flag absent).
    status = WIRE_STATUS[turn.read_status]
    return response_object(turn, status, text=store.turns.committed_text(turn), usage=turn.usage)
