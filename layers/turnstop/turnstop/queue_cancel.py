"""Cancels that arrive from a queue: other services stop turns by sending a message.

Each message is one cancel request, handled by the same single conditional write as the
HTTP cancel endpoints. Senders are trusted services (IAM on the queue), so a message names
the tenant itself; scope and end user narrow it as the HTTP callers' would.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Field, Json, StrictStr

from turnstop.core.turn import CancelOutcome, CancelRequest
from turnstop.store.dynamo import Store


class CancelMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    turn_id: StrictStr = Field(min_length=1, max_length=128)
    tenant: StrictStr = Field(min_length=1, max_length=128)
    reason: StrictStr | None = Field(default=None, max_length=1000)
    actor: StrictStr | None = Field(default=None, max_length=256)
    scope: StrictStr | None = Field(default=None, max_length=256)
    end_user: StrictStr | None = Field(default=None, max_length=256)


class CancelRecord(SqsRecordModel):
    body: Json[CancelMessage]


def handle(store: Store, message: CancelMessage) -> CancelOutcome:
    """One conditional write; every outcome (not_found included) is a settled message."""
    outcome, _ = store.request_cancel(
        message.turn_id,
        tenant=message.tenant,
        scope=message.scope,
        end_user=message.end_user,
        req=CancelRequest(reason=message.reason, actor=message.actor, source="queue"),
    )
    return outcome
