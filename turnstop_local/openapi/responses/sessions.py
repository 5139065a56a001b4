"""The sessions dialect's answers, the ledger, and the admin bulk cancel."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# ----------------------------------------------------------------- sessions


class Session(BaseModel):
    id: str
    object: Literal["session"]
    persistent: bool
    created_at: str
    expires_at: str


class DeletedSession(BaseModel):
    id: str
    object: Literal["session"]
    deleted: Literal[True]
    cancelled_response_id: str | None


class SessionsCancel(BaseModel):
    """The seed's ``{"response_id": "msg_...", "status": "cancelling" | "already_complete"}``;
    a cancel by key that finds no turn yet answers ``response_id: null`` (a tombstone)."""

    response_id: str | None
    status: Literal["cancelling", "already_complete"]


class LedgerEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    turn_id: str
    kind: str = Field(description="usage, debit, charge or refund")
    at: int = Field(description="epoch milliseconds")


class Upstream(BaseModel):
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


class Ledger(BaseModel):
    object: Literal["list"]
    data: list[LedgerEntry]
    upstream: Upstream | None = Field(
        default=None, description="with response_id: what that turn's model provider cost the platform"
    )


# ----------------------------------------------------------------- admin


class BulkScope(BaseModel):
    """Which turns a bulk cancel stops: a tenant (the caller's own), narrowed by any of an
    account, a session or a thread (not both), an end user."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"minProperties": 1, "not": {"required": ["session_id", "thread_id"]}},
    )
    tenant: str | None = Field(default=None, min_length=1, max_length=128, description="default: the caller's")
    account_id: int | None = Field(default=None, ge=0)
    session_id: str | None = Field(default=None, min_length=1, max_length=256)
    thread_id: str | None = Field(default=None, min_length=1, max_length=256)
    end_user: str | None = Field(default=None, min_length=1, max_length=256)


class BulkCancelRequest(BaseModel):
    """``POST /v1/admin/cancels`` (``turnstop.core.bulk.parse_request`` reads it)."""

    model_config = ConfigDict(extra="forbid")
    scope: BulkScope
    created_before: str | None = Field(
        default=None, description="RFC 3339, e.g. 2026-11-23T02:04:29Z", json_schema_extra={"format": "date-time"}
    )
    reason: str | None = Field(default=None, min_length=1, max_length=1000)
    actor: str | None = Field(default=None, min_length=1, max_length=256)


class BulkCancelReport(BaseModel):
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
