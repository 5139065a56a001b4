"""The toy dialect's one route, its cancel: a resolver with its error shape, as every function's."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from tests.toy_dialect.wire import SHAPE, cancel_answer
from turnstop.core import errors, scopes
from turnstop.core.turn import CancelOutcome, CancelRequest
from turnstop.http.api import TurnstopResolver, json_response, require_principal
from turnstop.platform.settings import Settings
from turnstop.store import Store


def toy_cancel_app(store: Store, settings: Settings) -> TurnstopResolver:
    app = TurnstopResolver(SHAPE)

    @app.post("/v1/toy/turns/<turn_id>/cancel")
    def handle(turn_id: str) -> Response:
        principal = require_principal(app.event, store)
        outcome, _ = store.turns.request_cancel(
            turn_id,
            tenant=principal.tenant,
            scope=scopes.STATELESS,
            end_user=principal.end_user,
            req=CancelRequest(reason="toy", actor=principal.key_id),
        )
        if outcome is CancelOutcome.NOT_FOUND:
            raise errors.NotFound("No such toy turn")
        return json_response(*cancel_answer(turn_id, outcome))

    return app
