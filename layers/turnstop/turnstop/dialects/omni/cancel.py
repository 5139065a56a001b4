"""The omni dialect's cancel endpoint, ``DELETE /v1/omni-ai/responses/{id}?account_id=N``, its
own function. Only what a cancel needs is imported (no request models, no threads)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from turnstop.auth import Principal
from turnstop.core import errors, scopes
from turnstop.core.turn import CancelOutcome, CancelRequest, Status
from turnstop.dialects.omni import query, wire
from turnstop.http.api import TurnstopResolver, json_response, require_principal
from turnstop.platform.settings import Settings
from turnstop.store import Store


def cancel(store: Store, principal: Principal, response_id: str, account_id: int) -> bool:
    """One conditional write, no read. ``canceled`` is true when the response ends (or will
    end) canceled, false when it had already finished otherwise: repeated calls agree."""
    query.authorize(principal, account_id)
    if not query.is_id(response_id):
        raise errors.NotFound(wire.RESPONSE_NOT_FOUND)
    outcome, turn = store.turns.request_cancel(
        response_id,
        tenant=principal.tenant,
        scope=scopes.omni(account_id),
        end_user=principal.end_user,
        req=CancelRequest(actor=principal.key_id or None, source="api"),
    )
    if outcome is CancelOutcome.NOT_FOUND:
        raise errors.NotFound(wire.RESPONSE_NOT_FOUND)
    return outcome.ends_cancelled or (turn is not None and turn.status is Status.CANCELLED)


def omni_cancel_app(store: Store, settings: Settings) -> TurnstopResolver:
    app = TurnstopResolver(wire.SHAPE)

    @app.delete("/v1/omni-ai/responses/<response_id>")
    def handle(response_id: str) -> Response:
        principal = require_principal(app.event, store)
        account = query.account_from_query(dict(app.current_event.query_string_parameters or {}))
        canceled = cancel(store, principal, response_id, account)
        return json_response(200, wire.envelope({"canceled": canceled}, app.request_id))

    return app
