"""The sessions dialect's two cancel endpoints, each its own function, each with its cancel
by Idempotency-Key beside it (``…/responses/cancel``: the turn the key started, or a tombstone
so that the turn it will start is born cancelled). Only what a cancel needs is imported here
(no request models, no runtime, no streaming), so they start lean."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response

from turnstop.auth import Principal
from turnstop.core import errors
from turnstop.core.turn import CancelOutcome, CancelRequest
from turnstop.dialects.sessions.ids import check_rid, kind_and_scope
from turnstop.dialects.sessions.wire import SHAPE, cancel_answer
from turnstop.http.api import TurnstopResolver, json_response, require_principal
from turnstop.http.body import cancel_reason, json_object
from turnstop.idempotency.keys import Tombstone
from turnstop.idempotency.requests import start_key
from turnstop.platform.settings import Settings
from turnstop.store import Store
from turnstop.store.sessions import check_live
from turnstop.store.transaction import Transaction


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


def cancel_by_key(
    store: Store, principal: Principal, key: str, *, session_id: str | None, reason: str | None
) -> tuple[int, dict[str, Any]]:
    """One conditional write either way: the turn the key started is cancelled as above, or,
    if none has started yet, a tombstone makes the one that will start born cancelled
    (``202 {"response_id": null, "status": "cancelling"}``)."""
    _, scope = kind_and_scope(session_id)

    def own_session(tx: Transaction, now: int) -> None:  # only in the caller's live session
        assert session_id is not None
        check_live(tx, session_id, principal.tenant, principal.end_user, now)

    found = store.tombstones.cancel(
        principal.tenant,
        key,
        scope=scope,
        end_user=principal.end_user,
        req=CancelRequest(reason=reason, actor=principal.key_id, source="api"),
        check=None if session_id is None else own_session,
    )
    if isinstance(found, Tombstone):
        return 202, {"response_id": None, "status": "cancelling"}
    if found is None or found.outcome is CancelOutcome.NOT_FOUND:
        raise errors.NotFound("Response not found")
    return cancel_answer(found.turn_id, found.outcome)


def _app(store: Store, settings: Settings, base: str) -> TurnstopResolver:
    """``base``'s two cancels: ``<base>/<rid>/cancel`` and ``<base>/cancel`` (by Idempotency-Key)."""
    app = TurnstopResolver(SHAPE)

    def reason() -> str | None:
        return cancel_reason(json_object(app.event, settings.max_body_bytes, optional=True), others=True)

    @app.post(f"{base}/<rid>/cancel")
    def handle(rid: str, session_id: str | None = None) -> Response:
        principal = require_principal(app.event, store)
        status, answer = cancel(store, principal, rid, session_id=session_id, reason=reason())
        return json_response(status, answer)

    @app.post(f"{base}/cancel")
    def handle_key(session_id: str | None = None) -> Response:
        principal = require_principal(app.event, store)
        key = start_key(app.event)
        status, answer = cancel_by_key(store, principal, key, session_id=session_id, reason=reason())
        return json_response(status, answer)

    return app


def session_cancel_app(store: Store, settings: Settings) -> TurnstopResolver:
    return _app(store, settings, "/v1/sessions/<session_id>/responses")


def response_cancel_app(store: Store, settings: Settings) -> TurnstopResolver:
    return _app(store, settings, "/v1/responses")
