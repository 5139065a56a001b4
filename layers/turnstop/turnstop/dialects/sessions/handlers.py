"""Routes of the sessions dialect, shared by its thin Lambda functions.

``cancel_app``-style resolvers are built per function so each cancel endpoint stays its own
function; the streaming routes are served by ``stream_router`` (Function URL in AWS).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from turnstop.core import errors
from turnstop.dialects.sessions import models, service
from turnstop.dialects.sessions.errors import error_body
from turnstop.http.api import idempotency_claim, json_response, make_resolver, parse_body, request_id, require_principal
from turnstop.http.sse import StreamingResponse
from turnstop.http.streaming import StreamRouter
from turnstop.settings import Settings
from turnstop.store.dynamo import Store


def resolver() -> APIGatewayHttpResolver:
    return make_resolver(error_body)


def add_session_routes(app: APIGatewayHttpResolver, store: Store, settings: Settings) -> None:
    @app.post("/v1/sessions")
    def create_session() -> Response:
        principal = require_principal(app.current_event.raw_event, store)
        body = parse_body(app.current_event.raw_event, models.CreateSession, settings.max_body_bytes, optional=True)
        return json_response(201, service.create_session(store, settings, principal, body.persistent))

    @app.delete("/v1/sessions/<session_id>")
    def delete_session(session_id: str) -> Response:
        principal = require_principal(app.current_event.raw_event, store)
        return json_response(200, service.destroy_session(store, principal, session_id))

    @app.get("/v1/ledger")
    def ledger() -> Response:
        principal = require_principal(app.current_event.raw_event, store)
        q = app.current_event.query_string_parameters or {}
        entries = store.ledger(principal.tenant, q.get("response_id") or None)
        return json_response(200, {"object": "list", "data": entries})


def add_cancel_route(app: APIGatewayHttpResolver, store: Store, settings: Settings, *, in_session: bool) -> None:
    def _cancel(rid: str, session_id: str | None) -> Response:
        event = app.current_event.raw_event
        principal = require_principal(event, store)
        body = parse_body(event, models.CancelBody, settings.max_body_bytes, optional=True)
        status, answer = service.cancel(store, principal, rid, session_id=session_id, reason=body.reason)
        return json_response(status, answer, {"X-Request-Id": request_id(event)})

    if in_session:

        @app.post("/v1/sessions/<session_id>/responses/<rid>/cancel")
        def cancel_session_turn(session_id: str, rid: str) -> Response:
            return _cancel(rid, session_id)

    else:

        @app.post("/v1/responses/<rid>/cancel")
        def cancel_response(rid: str) -> Response:
            return _cancel(rid, None)


def stream_router(store: Store, settings: Settings) -> StreamRouter:
    router = StreamRouter(error_body)

    def start(event: dict[str, Any], session_id: str | None) -> StreamingResponse:
        principal = require_principal(event, store)
        if session_id is None:
            prompt = parse_body(event, models.CreateResponse, settings.max_body_bytes).prompt
            if not prompt:
                raise errors.InvalidRequest("Invalid field 'input': Field required")
        else:
            prompt = parse_body(event, models.SendMessage, settings.max_body_bytes).message
        turn = service.start_turn(
            store, settings, principal, prompt=prompt, session_id=session_id, idempotency=idempotency_claim(event, principal)
        )
        return service.stream(store, settings, turn, 0)

    def resume(event: dict[str, Any], rid: str, session_id: str | None) -> StreamingResponse:
        principal = require_principal(event, store)
        if session_id is not None:
            service.check_session_id(session_id)
            session = store.get_session(session_id)
            if session is None or not session.live(principal.tenant, store.now()):
                raise errors.NotFound("Session not found")
        turn = service.find_turn(store, principal, rid, session_id)
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        after = service.parse_after(headers, event.get("queryStringParameters") or {})
        return service.stream(store, settings, turn, after)

    router.add("POST", "/v1/sessions/{id}/messages", lambda ev, p: start(ev, p["id"]))
    router.add("POST", "/v1/responses", lambda ev, p: start(ev, None))
    router.add("GET", "/v1/sessions/{id}/responses/{rid}/events", lambda ev, p: resume(ev, p["rid"], p["id"]))
    router.add("GET", "/v1/responses/{rid}/events", lambda ev, p: resume(ev, p["rid"], None))
    return router
