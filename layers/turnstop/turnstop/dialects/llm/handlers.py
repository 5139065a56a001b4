"""Routes of the llm dialect, shared by its two Lambda functions.

``api_router`` serves ``POST /api/v1/llm/responses`` and ``GET /api/v1/llm/responses/{id}``
through the streaming path: both may answer with SSE (``stream: true`` in the body, or
``?stream=true``), so one streaming function owns these paths and returns JSON when the request
does not ask for a stream. ``cancel_app`` is the cancel endpoint's own resolver (its own function).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from turnstop.core import errors
from turnstop.dialects.llm import service
from turnstop.dialects.llm.errors import error_json
from turnstop.http.api import raw_body, request_id, require_principal
from turnstop.http.sse import StreamingResponse
from turnstop.settings import Settings
from turnstop.store.dynamo import Store

BASE = "/api/v1/llm/responses"
Handler = Callable[[dict[str, Any], dict[str, str]], StreamingResponse]


def _json(status: int, body: Any, event: dict[str, Any]) -> StreamingResponse:
    headers = {"Content-Type": "application/json", "X-Request-Id": request_id(event)}
    return StreamingResponse(status, headers, [json.dumps(body, separators=(",", ":"))])


def _query(event: dict[str, Any]) -> dict[str, str]:
    return dict(event.get("queryStringParameters") or {})


class ApiRouter:
    """Create and retrieve (JSON or SSE) with OpenAI-shaped errors."""

    def __init__(self, store: Store, settings: Settings, *, sleep: Callable[[float], None] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.sleep = sleep
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(f"^{BASE}/?$"), self.create),
            ("GET", re.compile(f"^{BASE}/(?P<response_id>[^/]+)$"), self.retrieve),
        ]

    def __call__(self, event: dict[str, Any], context: Any = None) -> StreamingResponse:
        method = (event.get("requestContext") or {}).get("http", {}).get("method", "GET").upper()
        path = event.get("rawPath") or "/"
        try:
            for m, rx, handler in self.routes:
                match = rx.match(path)
                if match and m == method:
                    return handler(event, match.groupdict())
            raise errors.NotFound(f"Unknown route: {method} {path}")
        except Exception as exc:  # every error answers in the OpenAI error shape
            status, body, headers = error_json(exc, event)
            return StreamingResponse(status, headers, [body])

    def create(self, event: dict[str, Any], params: dict[str, str]) -> StreamingResponse:
        principal = require_principal(event, self.store)
        body = service.parse_create(event, self.settings.max_body_bytes)
        turn = service.create(self.store, self.settings, principal, body)
        if body.stream:
            return service.stream(self.store, self.settings, turn, 0)
        if not body.background:
            kw: dict[str, Any] = {"poll_ms": self.settings.reader_poll_ms}
            if self.sleep is not None:
                kw["sleep"] = self.sleep
            turn = service.wait_for_end(self.store, turn, **kw)
        return _json(200, service.response_json(self.store, turn), event)

    def retrieve(self, event: dict[str, Any], params: dict[str, str]) -> StreamingResponse:
        principal = require_principal(event, self.store)
        query = _query(event)
        wants_stream = service.parse_stream_flag(query)
        after = service.parse_starting_after(query)
        turn = service.find(self.store, principal, params["response_id"])
        if wants_stream:
            return service.stream(self.store, self.settings, turn, after)
        return _json(200, service.response_json(self.store, turn), event)


def api_router(store: Store, settings: Settings) -> ApiRouter:
    return ApiRouter(store, settings)


def cancel_app(store: Store, settings: Settings) -> APIGatewayHttpResolver:
    """``POST /api/v1/llm/responses/{response_id}/cancel``: one conditional write, no read first."""
    app = APIGatewayHttpResolver()

    def render(exc: Exception) -> Response:
        status, body, headers = error_json(exc, app.current_event.raw_event)
        return Response(status_code=status, content_type="application/json", body=body, headers=headers)

    app.exception_handler(Exception)(render)

    @app.not_found
    def _not_found(exc: Exception) -> Response:
        return render(errors.NotFound("Unknown route"))

    @app.post(f"{BASE}/<response_id>/cancel")
    def cancel(response_id: str) -> Response:
        event = app.current_event.raw_event
        principal = require_principal(event, store)
        if len(raw_body(event)) > settings.max_body_bytes:
            raise errors.PayloadTooLarge(f"Request body is too large: the limit is {settings.max_body_bytes} bytes.")
        answer = service.cancel(store, principal, response_id)
        return Response(
            status_code=200,
            content_type="application/json",
            body=json.dumps(answer, separators=(",", ":")),
            headers={"X-Request-Id": request_id(event)},
        )

    return app
