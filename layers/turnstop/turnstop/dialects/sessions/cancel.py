"""The sessions dialect's two cancel endpoints, each its own function. Only what a cancel
needs is imported here (no request models, no runtime, no streaming), so they start lean."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response

from turnstop.auth import Principal
from turnstop.core import errors
from turnstop.core.turn import CancelOutcome, CancelRequest
from turnstop.dialects.sessions.ids import check_rid, kind_and_scope
from turnstop.dialects.sessions.wire import SHAPE, cancel_answer
from turnstop.http.api import TurnstopResolver, cancel_app, json_response, require_principal
from turnstop.http.body import cancel_reason, json_object
from turnstop.settings import Settings
from turnstop.store import Store


def cancel(
    store: Store, principal: Principal, rid: str, *, session_id: str | None, reason: str | None
) -> tuple[int, dict[str, Any]]:
    """One conditional write: 202 cancelling while in flight, 200 already_complete once
    finished (within its grace window), 404 otherwise."""
    kind, scope = kind_and_scope(session_id)
    check_rid(rid, kind)
    outcome, _ = store.turns.request_cancel(
        rid,
        tenant=principal.tenant,
        scope=scope,
        end_user=principal.end_user,
        req=CancelRequest(reason=reason, actor=principal.key_id, source="api"),
    )
    if outcome is CancelOutcome.NOT_FOUND:
        raise errors.NotFound("Response not found")
    return cancel_answer(rid, outcome)


def _app(store: Store, settings: Settings, route: str) -> TurnstopResolver:
    def handle(app: TurnstopResolver, rid: str, session_id: str | None = None) -> Response:
        principal = require_principal(app.event, store)
        reason = cancel_reason(json_object(app.event, settings.max_body_bytes, optional=True), others=True)
        status, answer = cancel(store, principal, rid, session_id=session_id, reason=reason)
        return json_response(status, answer)

    return cancel_app(SHAPE, route, handle)


def session_cancel_app(store: Store, settings: Settings) -> TurnstopResolver:
    return _app(store, settings, "POST /v1/sessions/<session_id>/responses/<rid>/cancel")


def response_cancel_app(store: Store, settings: Settings) -> TurnstopResolver:
    return _app(store, settings, "POST /v1/responses/<rid>/cancel")
