"""Cancels that arrive from a queue: other services stop turns by sending a message.

A message with a ``turn_id`` is one cancel request, handled by the same single conditional
write as the HTTP cancel endpoints; its optional ``scope`` (a turn scope such as
``session:<id>``) and ``end_user`` narrow it as the HTTP callers' would. A message with a
``scope`` object instead (and no ``turn_id``) is a bulk cancel of every in-flight turn of
that scope, one page per message (``cancels/bulk.py``). Senders are trusted services (IAM on
the queue), so a message names the tenant itself.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Field, Json, StrictStr, field_validator, model_validator

from turnstop.cancels.bulk import BulkCancel, Page
from turnstop.core import errors
from turnstop.core.bulk import BulkRequest, parse_request
from turnstop.core.scopes import Scope
from turnstop.core.turn import CancelOutcome, CancelRequest
from turnstop.observability import logkeys
from turnstop.store import Store


class CancelMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    turn_id: StrictStr = Field(min_length=1, max_length=128)
    tenant: StrictStr = Field(min_length=1, max_length=128)
    reason: StrictStr | None = Field(default=None, max_length=1000)
    actor: StrictStr | None = Field(default=None, max_length=256)
    scope: StrictStr | None = Field(default=None, max_length=256)
    end_user: StrictStr | None = Field(default=None, max_length=256)

    @field_validator("scope")
    @classmethod
    def _known_scope(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                Scope.parse(v)
            except ValueError:
                raise ValueError(f"unknown scope {v!r}") from None
        return v


class BulkMessage(BaseModel):
    """``{"scope": {"tenant", "account_id"?, "session_id"?, "thread_id"?, "end_user"?},
    "created_before"?, "reason"?, "actor"?}``, and ``page`` on the messages that carry a bulk
    cancel's further pages. Checked by the same rules as ``POST /v1/admin/cancels``."""

    model_config = ConfigDict(extra="forbid")
    scope: dict[str, Any]
    created_before: StrictStr | None = None
    reason: StrictStr | None = None
    actor: StrictStr | None = None
    page: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _valid(self) -> BulkMessage:
        try:
            _ = self.request, self.continues
        except errors.InvalidRequest as e:
            raise ValueError(e.message) from None
        return self

    @property
    def request(self) -> BulkRequest:
        return parse_request(self.model_dump(exclude_none=True, exclude={"page"}))

    @property
    def continues(self) -> Page | None:
        return Page.from_message(self.model_dump(exclude_none=True))


class CancelRecord(SqsRecordModel):
    body: Json[CancelMessage | BulkMessage]

    @property
    def receive_count(self) -> int:
        return int(self.attributes.ApproximateReceiveCount or 1)


def handle_bulk(bulk: BulkCancel, message: BulkMessage, message_id: str, receive_count: int) -> Page:
    """One page of a bulk cancel (the first one opens its report, ``sqs-<message id>``)."""
    logkeys.reset()  # a new message: no key of the last one (the page binds this one's)
    page = message.continues or bulk.open(f"sqs-{message_id}", message.request, "queue")[1]
    bulk.hand_on(bulk.run_page(page), redelivered=receive_count > 1)
    return page


def handle(store: Store, message: CancelMessage) -> CancelOutcome:
    """One conditional write; every outcome (not_found included) is a settled message."""
    logkeys.reset()  # a new message: no key of the last one (the cancel write binds this one's)
    outcome, _ = store.turns.request_cancel(
        message.turn_id,
        tenant=message.tenant,
        scope=Scope.parse(message.scope) if message.scope else None,
        end_user=message.end_user,
        req=CancelRequest(reason=message.reason, actor=message.actor, source="queue"),
    )
    return outcome
