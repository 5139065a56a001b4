"""Routes of the omni dialect. The DELETE cancel has its own resolver (``cancel.py``) so it
runs in its own function (reserved concurrency); every other route shares one function.

Every body is the SDK's envelope: ``{"data": ..., "metadata": {"request_id": ...}}``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response

from turnstop.dialects.omni import models, query, wire
from turnstop.dialects.omni.service import Omni
from turnstop.dialects.service import Enqueue
from turnstop.http.api import TurnstopResolver, json_response, require_principal
from turnstop.http.body import max_duration_ms
from turnstop.idempotency.requests import idempotency_binding
from turnstop.platform.settings import Settings
from turnstop.store import Store


def _ok(app: TurnstopResolver, data: Any, status: int = 200, **meta: Any) -> Response:
    return json_response(status, wire.envelope(data, app.request_id, **meta))


def _query(app: TurnstopResolver) -> dict[str, str]:
    return dict(app.current_event.query_string_parameters or {})


def api_app(store: Store, settings: Settings, enqueue: Enqueue | None = None) -> TurnstopResolver:
    app = TurnstopResolver(wire.SHAPE)
    omni = Omni(store, settings, enqueue)

    @app.post("/v1/omni-ai/threads")
    def create_thread() -> Response:
        principal = require_principal(app.event, store)
        body = models.parse_turn_body(app.event, models.CreateThread, settings.max_body_bytes)
        idempotency = idempotency_binding(app.event, principal.tenant, principal.end_user)
        limit_ms = max_duration_ms(app.event)
        return _ok(app, omni.create_thread(principal, body, idempotency, max_duration_ms=limit_ms), 201)

    @app.get("/v1/omni-ai/threads")
    def get_threads() -> Response:
        principal = require_principal(app.event, store)
        q = _query(app)
        account = query.account_from_query(q)
        data, meta = omni.list_threads(principal, account, query.page_size_from_query(q), q.get("page_token"))
        return _ok(app, data, **meta)

    @app.get("/v1/omni-ai/threads/<thread_id>")
    def get_thread(thread_id: str) -> Response:
        principal = require_principal(app.event, store)
        return _ok(app, omni.get_thread(principal, thread_id, query.account_from_query(_query(app))))

    @app.post("/v1/omni-ai/threads/<thread_id>/messages")
    def create_message(thread_id: str) -> Response:
        principal = require_principal(app.event, store)
        body = models.parse_turn_body(app.event, models.CreateMessage, settings.max_body_bytes)
        idempotency = idempotency_binding(app.event, principal.tenant, principal.end_user)
        limit_ms = max_duration_ms(app.event)
        return _ok(app, omni.create_message(principal, thread_id, body, idempotency, max_duration_ms=limit_ms), 201)

    @app.get("/v1/omni-ai/threads/<thread_id>/messages")
    def get_messages(thread_id: str) -> Response:
        principal = require_principal(app.event, store)
        q = _query(app)
        account = query.account_from_query(q)
        data, meta = omni.get_messages(
            principal, thread_id, account, query.page_size_from_query(q), q.get("page_token")
        )
        return _ok(app, data, **meta)

    @app.get("/v1/omni-ai/threads/<thread_id>/response")
    def get_thread_response(thread_id: str) -> Response:
        principal = require_principal(app.event, store)
        return _ok(app, omni.get_thread_response(principal, thread_id, query.account_from_query(_query(app))))

    @app.get("/v1/omni-ai/responses/<response_id>")
    def get_response(response_id: str) -> Response:
        principal = require_principal(app.event, store)
        return _ok(app, omni.get_response(principal, response_id, query.account_from_query(_query(app))))

    return app
