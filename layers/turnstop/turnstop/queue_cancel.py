"""Cancels that arrive from a queue: other services stop turns by sending a message.

Each message is one cancel request, handled by the same single conditional write as the
HTTP cancel endpoints. Senders are trusted services (IAM on the queue), so a message names
the tenant itself; scope and end user narrow it as the HTTP callers' would.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Field, Json, StrictStr, field_validator

from turnstop.core.scopes import Scope
from turnstop.core.turn import CancelOutcome, CancelRequest
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


class CancelRecord(SqsRecordModel):
    body: Json[CancelMessage]


def handle(store: Store, message: CancelMessage) -> CancelOutcome:
    """One conditional write; every outcome (not_found included) is a settled message."""
    outcome, _ = store.turns.request_cancel(
        message.turn_id,
        tenant=message.tenant,
        scope=Scope.parse(message.scope) if message.scope else None,
        end_user=message.end_user,
        req=CancelRequest(reason=message.reason, actor=message.actor, source="queue"),
    )
    return outcome
