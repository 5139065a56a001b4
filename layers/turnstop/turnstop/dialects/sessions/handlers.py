"""Routes of the sessions dialect, one resolver per Lambda function.

``api_app`` serves the session and ledger routes; ``stream_app`` the streaming routes
(Function URL in AWS); each cancel endpoint has its own function and resolver, in
``cancel.py`` (lean: no request models, no runtime).
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from turnstop.core import errors
from turnstop.core.turn import Turn
from turnstop.dialects.sessions import models
from turnstop.dialects.sessions.renderer import RENDERERS
from turnstop.dialects.sessions.service import Sessions
from turnstop.dialects.sessions.wire import SHAPE
from turnstop.http.api import TurnstopResolver, json_response, require_principal, sse_response
from turnstop.http.body import headers_of, max_duration_ms, parse_body
from turnstop.http.sse import live_turn_response, stream_response
from turnstop.idempotency.requests import idempotency_binding
from turnstop.platform.settings import Settings
from turnstop.runtime.runner import TurnRunner
from turnstop.store import Store


def api_app(store: Store, settings: Settings) -> TurnstopResolver:
    app = TurnstopResolver(SHAPE)
    service = Sessions(store, settings)

    @app.post("/v1/sessions")
    def create_session() -> Response:
        principal = require_principal(app.event, store)
        body = parse_body(app.event, models.CreateSession, settings.max_body_bytes, optional=True)
        return json_response(201, service.create_session(principal, body.persistent))

    @app.delete("/v1/sessions/<session_id>")
    def delete_session(session_id: str) -> Response:
        return json_response(200, service.destroy_session(require_principal(app.event, store), session_id))

    @app.get("/v1/ledger")
    def ledger() -> Response:
        principal = require_principal(app.event, store)
        q = app.current_event.query_string_parameters or {}
        return json_response(200, service.ledger(principal, q.get("response_id") or None))

    return app


def stream_app(store: Store, settings: Settings, runner: TurnRunner) -> TurnstopResolver:
    """The streaming routes. A new turn runs in the request that starts it, under ``runner``."""
    app = TurnstopResolver(SHAPE)
    service = Sessions(store, settings)

    @app.post("/v1/responses")
    @app.post("/v1/sessions/<session_id>/messages")
    def start(session_id: str | None = None) -> Response:
        event = app.event
        principal = require_principal(event, store)
        body: models.CreateResponse | models.SendMessage
        if session_id is None:
            body = parse_body(event, models.CreateResponse, settings.max_body_bytes)
            prompt = body.prompt
            if not prompt:
                raise errors.InvalidRequest("Invalid field 'input': Field required")
        else:
            body = parse_body(event, models.SendMessage, settings.max_body_bytes)
            prompt = body.message
        limit_ms = max_duration_ms(event, body.max_duration_seconds)
        idempotency = idempotency_binding(event, principal.tenant, principal.end_user)
        turn, replayed = service.start_turn(
            principal,
            prompt=prompt,
            session_id=session_id,
            idempotency=idempotency,
            runner=runner,
            max_duration_ms=limit_ms,
        )
        if replayed or turn.cancelled_before_start:  # born cancelled: its stream is created … cancelled
            return replay(turn, 0)
        live = service.run_live(turn, runner, app.remaining_ms)
        return sse_response(live_turn_response(store, settings, live, renderer=RENDERERS[turn.kind]))

    @app.get("/v1/responses/<rid>/events")
    @app.get("/v1/sessions/<session_id>/responses/<rid>/events")
    def resume(rid: str, session_id: str | None = None) -> Response:
        principal = require_principal(app.event, store)
        turn = service.find_turn(principal, rid, session_id)
        after = models.parse_after(headers_of(app.event), app.current_event.query_string_parameters or {})
        return replay(turn, after)

    def replay(turn: Turn, after: int) -> Response:
        ready = service.readable_after(turn, after)
        return sse_response(stream_response(store, settings, ready, after, renderer=RENDERERS[ready.kind]))

    return app
