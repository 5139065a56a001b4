"""Routes of the omni dialect. The DELETE cancel is registered on its own resolver so it
runs in its own function (reserved concurrency); every other route shares one function.

Every body is the SDK's envelope: ``{"data": ..., "metadata": {"request_id": ...}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from turnstop.core.turn import Turn
from turnstop.dialects.omni import models
from turnstop.dialects.omni.errors import error_body, extra_headers
from turnstop.dialects.omni.service import Omni
from turnstop.http.api import idempotency_claim, json_response, make_resolver, raw_body, request_id, require_principal
from turnstop.settings import Settings
from turnstop.store.dynamo import IdempotencyClaim, Store


def resolver() -> APIGatewayHttpResolver:
    return make_resolver(error_body, extra_headers=extra_headers)


def _ok(app: APIGatewayHttpResolver, data: Any, status: int = 200, **meta: Any) -> Response:
    rid = request_id(app.current_event.raw_event)
    return json_response(status, {"data": data, "metadata": {"request_id": rid, **meta}}, {"X-Request-Id": rid})


def _query(app: APIGatewayHttpResolver) -> dict[str, str]:
    return dict(app.current_event.query_string_parameters or {})


def add_api_routes(
    app: APIGatewayHttpResolver, store: Store, settings: Settings, enqueue: Callable[[Turn, IdempotencyClaim | None], None] | None = None
) -> Omni:
    omni = Omni(store, settings, enqueue or store.enqueue)

    @app.post("/v1/omni-ai/threads")
    def create_thread() -> Response:
        event = app.current_event.raw_event
        principal = require_principal(event, store)
        body = models.parse_turn_body(raw_body(event), models.CreateThread, settings.max_body_bytes)
        return _ok(app, omni.create_thread(principal, body, idempotency_claim(event, principal)), 201)

    @app.get("/v1/omni-ai/threads")
    def get_threads() -> Response:
        principal = require_principal(app.current_event.raw_event, store)
        q = _query(app)
        account = models.account_from_query(q)
        data, meta = omni.list_threads(principal, account, models.page_size_from_query(q), q.get("page_token"))
        return _ok(app, data, **meta)

    @app.get("/v1/omni-ai/threads/<thread_id>")
    def get_thread(thread_id: str) -> Response:
        principal = require_principal(app.current_event.raw_event, store)
        return _ok(app, omni.get_thread(principal, thread_id, models.account_from_query(_query(app))))

    @app.post("/v1/omni-ai/threads/<thread_id>/messages")
    def create_message(thread_id: str) -> Response:
        event = app.current_event.raw_event
        principal = require_principal(event, store)
        body = models.parse_turn_body(raw_body(event), models.CreateMessage, settings.max_body_bytes)
        data = omni.create_message(principal, thread_id, body, idempotency_claim(event, principal))
        return _ok(app, data, 201)

    @app.get("/v1/omni-ai/threads/<thread_id>/messages")
    def get_messages(thread_id: str) -> Response:
        principal = require_principal(app.current_event.raw_event, store)
        q = _query(app)
        account = models.account_from_query(q)
        data, meta = omni.get_messages(principal, thread_id, account, models.page_size_from_query(q), q.get("page_token"))
        return _ok(app, data, **meta)

    @app.get("/v1/omni-ai/threads/<thread_id>/response")
    def get_thread_response(thread_id: str) -> Response:
        principal = require_principal(app.current_event.raw_event, store)
        return _ok(app, omni.get_thread_response(principal, thread_id, models.account_from_query(_query(app))))

    @app.get("/v1/omni-ai/responses/<response_id>")
    def get_response(response_id: str) -> Response:
        principal = require_principal(app.current_event.raw_event, store)
        return _ok(app, omni.get_response(principal, response_id, models.account_from_query(_query(app))))

    return omni


def add_cancel_route(app: APIGatewayHttpResolver, store: Store, settings: Settings) -> Omni:
    omni = Omni(store, settings, store.enqueue)

    @app.delete("/v1/omni-ai/responses/<response_id>")
    def cancel_response(response_id: str) -> Response:
        principal = require_principal(app.current_event.raw_event, store)
        account = models.account_from_query(_query(app))
        return _ok(app, {"canceled": omni.cancel(principal, response_id, account)})

    return omni
