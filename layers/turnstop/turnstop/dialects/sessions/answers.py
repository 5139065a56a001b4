"""The sessions dialect's answers, each described once (the OpenAPI document's schemas are
these classes): sessions, cancels, the data of its turns' events, its error body, the ledger
and the admin endpoints' bulk cancel report (they speak this dialect's error shape).

The cancel functions build their answers (``wire.cancel_answer``, ``wire.error_body``) and the
renderer its events as dicts, loading no pydantic; tests/unit/test_answers.py checks them
against the models here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from turnstop.core.clock import iso
from turnstop.core.records import Session as StoredSession
from turnstop.http.wire_model import WireModel

__all__ = [
    "BulkCancelReport",
    "DeletedSession",
    "Ledger",
    "LedgerEntry",
    "Session",
    "SessionsCancel",
    "SessionsError",
    "SessionsErrorDetail",
    "TurnCreatedEvent",
    "TurnDeltaEvent",
    "TurnEndEvent",
    "Upstream",
    "Usage",
    "deleted_session",
    "ledger",
    "session_body",
]

# ----------------------------------------------------------------- sessions


class Session(WireModel):
    id: str
    object: Literal["session"]
    persistent: bool
    created_at: str
    expires_at: str


class DeletedSession(WireModel):
    id: str
    object: Literal["session"]
    deleted: Literal[True]
    cancelled_response_id: str | None


class SessionsCancel(WireModel):
    """The seed's ``{"response_id": "msg_...", "status": "cancelling" | "already_complete"}``;
    a cancel by key that finds no turn yet answers ``response_id: null`` (a tombstone)."""

    response_id: str | None
    status: Literal["cancelling", "already_complete"]


def session_body(s: StoredSession) -> dict[str, Any]:
    return Session(
        id=s.id,
        object="session",
        persistent=s.persistent,
        created_at=iso(s.created_at),
        expires_at=iso(s.expires_at),
    ).wire()


def deleted_session(session_id: str, cancelled_response_id: str | None) -> dict[str, Any]:
    return DeletedSession(
        id=session_id, object="session", deleted=True, cancelled_response_id=cancelled_response_id
    ).wire()


# ----------------------------------------------------------------- errors


class SessionsErrorDetail(WireModel):
    type: str = Field(description="the error code: invalid_request, unauthorized, not_found, ...")
    message: str
    request_id: str


class SessionsError(WireModel):
    """The sessions dialect's (and the admin endpoints') error shape."""

    error: SessionsErrorDetail


# ----------------------------------------------------------------- the data of server-sent events


class Usage(WireModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class TurnCreatedEvent(WireModel):
    """``message.created`` / ``response.created``: ``id`` is the response id."""

    id: str
    object: Literal["message", "response"]
    status: Literal["queued"]
    created_at: str
    session_id: str | None = None


class TurnDeltaEvent(WireModel):
    id: str
    delta: str


class TurnEndEvent(WireModel):
    """The last event: ``…completed`` (billed), ``…cancelled`` (the usage at stop, not billed;
    who stopped it and why) or ``…failed``."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: Literal["completed", "cancelled", "failed"]
    usage: Usage
    billed: bool
    cancel: dict[str, Any] | None = None
    error: Any = None


# ----------------------------------------------------------------- the ledger


class LedgerEntry(WireModel):
    model_config = ConfigDict(extra="allow")

    turn_id: str
    kind: str = Field(description="usage, debit, charge or refund")
    at: int = Field(description="epoch milliseconds")


class Upstream(WireModel):
    """What a turn's model provider cost the platform (billed to the end user or not)."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    estimated: bool = Field(description="true: the provider never reported usage (a call that did not finish)")
    route: str = Field(description="the TURNSTOP_MODELS route that ran it")
    provider: str
    model: str = Field(description="the upstream model id")
    cost_usd: str = Field(description="at the route's price_per_million, an exact decimal")


class Ledger(WireModel):
    object: Literal["list"]
    data: list[LedgerEntry]
    upstream: Upstream | None = Field(
        default=None, description="with response_id: what that turn's model provider cost the platform"
    )


def ledger(entries: list[dict[str, Any]], upstream: dict[str, Any] | None) -> dict[str, Any]:
    """The caller's entries; with one turn's, what its model provider cost (when recorded)."""
    body: dict[str, Any] = {"object": "list", "data": entries}
    if upstream is not None:
        body["upstream"] = upstream
    return Ledger.model_validate(body).wire()


# ----------------------------------------------------------------- the admin endpoints


class BulkCancelReport(WireModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["bulk_cancel"]
    status: str = Field(description="running or completed")
    scope: dict[str, Any]
    source: str
    matched: int
    cancelled: int
    already_finished: int
    failed: int
    pages: int
    created_at: str
    completed_at: str | None
