"""Remote workers' OpenAPI table: claim a remote route's offer, stream its events, finish it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

import turnstop_local.openapi.spec  # noqa: F401  (puts the layer on sys.path first)
from turnstop.dialects.sessions.answers import SessionsError
from turnstop.worker.api import Emit as WorkerEvents
from turnstop.worker.api import Finish as WorkerFinish
from turnstop_local.openapi.spec import Dialect, Ok, Op, path


class WorkerOffer(BaseModel):
    """A claimed offer: the full model request, and the token every later call carries."""

    offer_id: str
    token: str
    request: dict[str, Any] = Field(description="input, instructions, history, max_output_tokens, sampling")


class WorkerAnswer(BaseModel):
    """Whether the batch was taken; ``cancelled``: the turn was cancelled or has ended: stop."""

    accepted: bool
    cancelled: bool


QUEUE = path("queue", "The remote route's queue")
OFFER = path("offer_id", "The claimed offer (`off_…`)")

WORKERS = Dialect(
    "workers",
    "turnstop worker API",
    "Remote workers serve a remote route's turns (docs/agents.md). `Authorization: Bearer <the route's "
    'worker key>`. Errors: `{"error": {"type", "message", "request_id"}}`.',
    SessionsError,
    (
        Op(
            "POST",
            "/v1/workers/{queue}/claim",
            "claimOffer",
            "Long-poll for the queue's next offer",
            {200: Ok("An offer, now this worker's", WorkerOffer), 204: Ok("No offer came within the poll")},
            (401,),
            params=(QUEUE,),
        ),
        Op(
            "POST",
            "/v1/workers/{queue}/offers/{offer_id}/events",
            "emitEvents",
            "Stream a batch (or a heartbeat)",
            {200: Ok("Taken, or refused: cancelled", WorkerAnswer)},
            (400, 401, 404),
            WorkerEvents,
            params=(QUEUE, OFFER),
        ),
        Op(
            "POST",
            "/v1/workers/{queue}/offers/{offer_id}/finish",
            "finishOffer",
            "End the turn with its usage",
            {200: Ok("Taken, or refused: cancelled", WorkerAnswer)},
            (400, 401, 404),
            WorkerFinish,
            params=(QUEUE, OFFER),
        ),
    ),
    {},
    {"bearerAuth": {"type": "http", "scheme": "bearer", "description": "The route's worker key."}},
)
