"""The worker API's server side: remote workers serve a remote route's turns over HTTP (docs/agents.md).

    POST /v1/workers/{queue}/claim                        long-poll: an offer, or 204
    POST /v1/workers/{queue}/offers/{offer_id}/events     {"token", "events": [[kind, text], ...]}
    POST /v1/workers/{queue}/offers/{offer_id}/finish     {"token", "usage"?, "reason"?, "error"?}

Every call carries ``Authorization: Bearer <the route's worker key>``; the key is checked
against the route's ``worker_key_sha256`` (a route's workers see every tenant's turns on it, so
no tenant's API key may). A claim answers ``{"offer_id", "token", "request"}``; an emit or a
finish answers ``{"accepted": bool, "cancelled": bool}``: ``cancelled: true`` once the turn was
cancelled or has ended (a heartbeat is an emit of no events), and nothing is accepted after it.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from collections.abc import Callable
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from turnstop.auth import bearer_token
from turnstop.core import errors
from turnstop.http.api import TurnstopResolver, json_response
from turnstop.http.body import headers_of, parse_body
from turnstop.http.errors import ErrorInfo, ErrorShape
from turnstop.platform.settings import Settings
from turnstop.providers.config import Route, routes_for
from turnstop.store import Store
from turnstop.store.credentials import hash_secret

BASE = "/v1/workers"
MAX_EVENTS = 500
MAX_ERROR_CHARS = 500
CLAIM_POLL_S = 0.2
NO_OFFER = "No such offer on this queue"
OFFER_ID = re.compile(r"off_[A-Za-z0-9_-]{1,100}")


def _error_body(info: ErrorInfo) -> dict[str, object]:
    return {"error": {"type": info.code, "message": info.message, "request_id": info.request_id}}


SHAPE = ErrorShape(_error_body, not_found_message="No such route")


class Emit(BaseModel):
    """A batch of a worker's output, with its claim's attempt token. An empty batch is a
    heartbeat (the handler is alive: it resets the route's ``idle_timeout_s``), or with
    ``alive: false`` only a question: has the turn been cancelled? (a read, not a write)."""

    model_config = ConfigDict(extra="forbid")
    token: StrictStr = Field(min_length=1, max_length=200)
    events: list[tuple[Literal["text", "thinking"], StrictStr]] = Field(default_factory=list, max_length=MAX_EVENTS)
    alive: StrictBool = True


class Usage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input_tokens: Annotated[StrictInt, Field(ge=0, le=10**9)] = 0
    output_tokens: Annotated[StrictInt, Field(ge=0, le=10**9)] = 0


class Asks(BaseModel):
    """An action the agent asks a person to approve (``WorkerTurn.request_approval``)."""

    model_config = ConfigDict(extra="forbid")
    type: StrictStr = Field(min_length=1, max_length=100)
    summary: StrictStr = Field(max_length=1000)
    confirmation: StrictStr = Field(min_length=1, max_length=1000)
    params: dict[str, object] = Field(default_factory=dict)


class Finish(Emit):
    """The worker's end: its last batch, its usage (priced as a provider's), the action it asks
    a person to approve, or its error."""

    usage: Usage | None = None
    asks: Asks | None = None
    reason: Literal["stop", "length"] = "stop"
    error: StrictStr | None = Field(default=None, max_length=MAX_ERROR_CHARS)


def remote_route(settings: Settings, queue: str, headers: dict[str, str]) -> Route:
    """The remote route served under ``queue`` whose worker key the caller holds (else 401)."""
    token = bearer_token(headers)
    given = hash_secret(token) if token else ""
    for route in routes_for(settings.models).routes.values():
        digest = route.worker_key_sha256
        if route.remote and route.queue == queue and digest and hmac.compare_digest(digest, given):
            return route
    raise errors.Unauthenticated("Missing or invalid worker key for this queue")


def worker_api_app(
    store: Store,
    settings: Settings,
    monotonic: Callable[[], float] = time.monotonic,
    wait: Callable[[float], object] = time.sleep,
) -> TurnstopResolver:
    app = TurnstopResolver(SHAPE)

    def accepted(queue: str, offer_id: str, given: Emit, end: dict[str, object] | None = None) -> Response:
        if not OFFER_ID.fullmatch(offer_id):
            raise errors.NotFound(NO_OFFER)
        events = [[kind, text] for kind, text in given.events]
        if end is None and not events and not given.alive:
            outcome = store.offers.still_yours(queue, offer_id, hash_secret(given.token))
        else:
            outcome = store.offers.emit(queue, offer_id, hash_secret(given.token), events, finish=end)
        if outcome is None:
            raise errors.NotFound(NO_OFFER)
        return json_response(200, {"accepted": outcome, "cancelled": not outcome})

    @app.post(f"{BASE}/<queue>/claim")
    def claim(queue: str) -> Response:
        remote_route(settings, queue, headers_of(app.event))
        token = "wt_" + secrets.token_urlsafe(24)
        until = monotonic() + settings.worker_claim_wait_ms / 1000
        while True:
            offer = store.offers.claim(queue, hash_secret(token))
            if offer is not None:
                return json_response(200, {**offer, "offer_id": offer.pop("turn_id"), "token": token})
            if monotonic() >= until:
                return Response(status_code=204)
            wait(CLAIM_POLL_S)

    @app.post(f"{BASE}/<queue>/offers/<offer_id>/events")
    def emit(queue: str, offer_id: str) -> Response:
        remote_route(settings, queue, headers_of(app.event))
        return accepted(queue, offer_id, parse_body(app.event, Emit, settings.max_body_bytes))

    @app.post(f"{BASE}/<queue>/offers/<offer_id>/finish")
    def finish(queue: str, offer_id: str) -> Response:
        remote_route(settings, queue, headers_of(app.event))
        given = parse_body(app.event, Finish, settings.max_body_bytes)
        usage = given.usage.model_dump() if given.usage is not None else None
        asks = given.asks.model_dump() if given.asks is not None else None
        end: dict[str, object] = {"reason": given.reason, "error": given.error, "usage": usage, "asks": asks}
        return accepted(queue, offer_id, given, end)

    return app
