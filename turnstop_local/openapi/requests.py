"""Request bodies the code reads by hand, as models for the documents: the lean cancel
functions load no pydantic (their cold start), and the admin endpoint's body is read by
``turnstop.core.bulk.parse_request``; these models say what that code accepts.

(Request bodies read through pydantic are the handlers' own models,
``turnstop.dialects.<name>.models``; answers are ``turnstop.dialects.<name>.answers``.)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from turnstop.dialects.chat.threads import MAX_THREAD_ID_CHARS
from turnstop.http.body import MAX_REASON_CHARS

__all__ = ["AnyJson", "BulkCancelRequest", "BulkScope", "CancelReason", "ChatThreadRef", "StrictCancelReason"]


class CancelReason(BaseModel):
    """A cancel's optional ``{"reason": "..."}`` (other fields are ignored)."""

    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)


class StrictCancelReason(BaseModel):
    """A task cancel's optional ``{"reason": "..."}``: any other field is a 400."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)


class ChatThreadRef(BaseModel):
    """The seed's ``{"thread_id": "thread_xyz789"}`` (other fields are ignored)."""

    thread_id: str = Field(min_length=1, max_length=MAX_THREAD_ID_CHARS)


class AnyJson(RootModel[Any]):
    """Any JSON, ignored: sign-out is state-changing, so it is sent as ``application/json``
    (the CSRF rule); ``{}`` will do."""


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
