"""Routes of the llm dialect, shared by its two Lambda functions.

``api_app`` serves ``POST /api/v1/llm/responses`` and ``GET /api/v1/llm/responses/{id}`` on
the streaming path: both may answer with SSE (``stream: true`` in the body, or
``?stream=true``), so one streaming function owns these paths and answers JSON when the request
does not ask for a stream. The cancel endpoint's own resolver (its own function) is in ``cancel.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response

from turnstop.core.turn import Turn
from turnstop.dialects.llm import inputs, service, wire
from turnstop.dialects.llm.renderer import RENDERER
from turnstop.dialects.llm.service import Llm
from turnstop.dialects.llm.wire import SHAPE
from turnstop.http.api import TurnstopResolver, json_response, require_principal, sse_response
from turnstop.http.body import max_duration_ms
from turnstop.http.sse import live_turn_response, stream_response
from turnstop.idempotency.requests import idempotency_binding
from turnstop.platform.settings import Settings
from turnstop.runtime.runner import TurnRunner
from turnstop.store import Store

BASE = "/api/v1/llm/responses"


def api_app(
    store: Store, settings: Settings, runner: TurnRunner, *, sleep: Callable[[float], None] | None = None
) -> TurnstopResolver:
    """Create and retrieve (JSON or SSE). A foreground stream runs in the request, under
    ``runner``; ``sleep`` paces a foreground JSON create's wait for the worker (tests)."""
    app = TurnstopResolver(SHAPE)
    llm = Llm(store, settings)

    @app.post(f"{BASE}/")  # with or without a trailing slash
    @app.post(BASE)
    def create() -> Response:
        principal = require_principal(app.event, store)
        body = inputs.parse_create(app.event, settings.max_body_bytes)
        limit_ms = max_duration_ms(app.event, body.max_duration_seconds)
        idempotency = idempotency_binding(app.event, principal.tenant, principal.end_user)
        turn, replayed = llm.create(principal, body, runner, idempotency=idempotency, max_duration_ms=limit_ms)
        # a replay, or a response born cancelled (its key was cancelled first), runs nothing here
        if body.stream and not body.background and not (replayed or turn.cancelled_before_start):
            live = llm.run_live(turn, runner, app.remaining_ms)
            return sse_response(live_turn_response(store, settings, live, renderer=RENDERER, render=wire.frame))
        if body.stream:
            return replay(turn, 0)
        if not body.background:
            kw: dict[str, Any] = {"poll_ms": settings.reader_poll_ms}
            if sleep is not None:
                kw["sleep"] = sleep
            turn = service.wait_for_end(store, turn, **kw)
        return json_response(200, llm.response_json(turn))

    @app.get(f"{BASE}/<response_id>")
    def retrieve(response_id: str) -> Response:
        principal = require_principal(app.event, store)
        query = app.current_event.query_string_parameters or {}
        wants_stream = inputs.parse_stream_flag(query)
        after = inputs.parse_starting_after(query)
        turn = llm.find(principal, response_id)
        if wants_stream:
            return replay(turn, after)
        return json_response(200, llm.response_json(turn))

    def replay(turn: Turn, after: int) -> Response:
        ready = llm.readable_after(turn, after)
        return sse_response(stream_response(store, settings, ready, after, renderer=RENDERER, render=wire.frame))

    return app
