"""The worker API: remote workers serve a remote route's turns over HTTP (docs/agents.md).

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
import secrets
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response

from turnstop.auth import bearer_token
from turnstop.core import errors
from turnstop.http.api import TurnstopResolver, json_response
from turnstop.http.body import headers_of, json_object
from turnstop.http.errors import ErrorInfo, ErrorShape
from turnstop.platform.settings import Settings
from turnstop.providers.config import Route, routes_for
from turnstop.store import Store
from turnstop.store.credentials import hash_secret

BASE = "/v1/workers"
KINDS = ("text", "thinking")
CLAIM_WAIT_S = 5.0  # a claim waits this long for an offer before answering 204
CLAIM_POLL_S = 0.2
MAX_EVENTS = 500


def _error_body(info: ErrorInfo) -> dict[str, object]:
    return {"error": {"type": info.code, "message": info.message, "request_id": info.request_id}}


SHAPE = ErrorShape(_error_body, not_found_message="No such route")


def remote_route(settings: Settings, queue: str, headers: dict[str, str]) -> Route:
    """The remote route served under ``queue`` whose worker key the caller holds (else 401)."""
    token = bearer_token(headers)
    given = hash_secret(token) if token else ""
    for route in routes_for(settings.models).routes.values():
        digest = route.worker_key_sha256
        if route.remote and route.queue == queue and digest and hmac.compare_digest(digest, given):
            return route
    raise errors.Unauthenticated("Missing or invalid worker key for this queue")


def _events(body: dict[str, Any]) -> list[list[str]]:
    events = body.get("events", [])
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise errors.InvalidRequest(f"events must be a list of at most {MAX_EVENTS} [kind, text] pairs")
    out: list[list[str]] = []
    for event in events:
        if not (isinstance(event, list) and len(event) == 2 and event[0] in KINDS and isinstance(event[1], str)):
            raise errors.InvalidRequest('each event is ["text" | "thinking", "<text>"]')
        out.append([event[0], event[1]])
    return out


def _token(body: dict[str, Any]) -> str:
    token = body.get("token")
    if not isinstance(token, str) or not token:
        raise errors.InvalidRequest("token (the claim's attempt token) is required")
    return hash_secret(token)


def worker_api_app(store: Store, settings: Settings, monotonic: Callable[[], float] = time.monotonic,
                   wait: Callable[[float], Any] = time.sleep) -> TurnstopResolver:  # fmt: skip
    app = TurnstopResolver(SHAPE)

    def body() -> dict[str, Any]:
        return json_object(app.event, settings.max_body_bytes, optional=True) or {}

    @app.post(f"{BASE}/<queue>/claim")
    def claim(queue: str) -> Response:
        remote_route(settings, queue, headers_of(app.event))
        token = "wt_" + secrets.token_urlsafe(24)
        until = monotonic() + CLAIM_WAIT_S
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
        given = body()
        accepted = store.offers.emit(queue, offer_id, _token(given), _events(given))
        return json_response(200, {"accepted": accepted, "cancelled": not accepted})

    @app.post(f"{BASE}/<queue>/offers/<offer_id>/finish")
    def finish(queue: str, offer_id: str) -> Response:
        remote_route(settings, queue, headers_of(app.event))
        given = body()
        usage = given.get("usage") if isinstance(given.get("usage"), dict) else None
        end = {"reason": str(given.get("reason") or "stop"), "error": given.get("error") and str(given["error"])[:500],
               "usage": usage and {k: int(usage.get(k) or 0) for k in ("input_tokens", "output_tokens")}}  # fmt: skip
        accepted = store.offers.emit(queue, offer_id, _token(given), _events(given), finish=end)
        return json_response(200, {"accepted": accepted, "cancelled": not accepted})

    return app
