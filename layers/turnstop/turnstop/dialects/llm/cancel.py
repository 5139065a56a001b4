"""The llm dialect's cancel endpoint, ``POST /api/v1/llm/responses/{response_id}/cancel``, its
own function, with the cancel by Idempotency-Key beside it (``POST /api/v1/llm/responses/cancel``).
Only what a cancel needs is imported (no request models, no runtime)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response

from turnstop.auth import Principal
from turnstop.core import errors, scopes
from turnstop.core.turn import CancelOutcome, CancelRequest, Turn
from turnstop.dialects.llm import responses, wire
from turnstop.dialects.llm.renderer import KIND, response_object
from turnstop.dialects.llm.wire import SHAPE
from turnstop.http.api import TurnstopResolver, json_response, require_principal
from turnstop.http.body import raw_body
from turnstop.idempotency.keys import Tombstone
from turnstop.idempotency.requests import start_key
from turnstop.platform.settings import Settings
from turnstop.store import Store

BASE = "/api/v1/llm/responses"


def cancel(store: Store, principal: Principal, rid: str) -> dict[str, Any]:
    """One conditional write decides (background, tenant and end user are in its condition);
    the request and the output are read after it to render the response object."""
    responses.check_id(rid)
    outcome, turn = store.turns.request_cancel(
        rid,
        tenant=principal.tenant,
        scope=scopes.LLM_BACKGROUND,
        end_user=principal.end_user,
        req=CancelRequest(actor=principal.key_id or None, source="api"),
        with_old=True,
    )
    return _answer(store, rid, outcome, turn)


def _answer(store: Store, rid: str, outcome: CancelOutcome, turn: Turn | None) -> dict[str, Any]:
    if turn is not None:  # the decision is made; read the request to render the answer
        turn = store.turns.with_input(turn)
    if outcome is CancelOutcome.NOT_FOUND or turn is None:
        if (
            turn is not None
            and turn.kind == KIND
            and turn.scope == scopes.LLM_FOREGROUND
            and turn.input.get("store", True)  # an unstored response is unknown to every read
        ):
            raise errors.InvalidRequest(
                f"Response '{rid}' cannot be cancelled: only responses created with background=true can be cancelled.",
                param="response_id",
                code="response_not_cancellable",
            )
        raise errors.NotFound(f"Response with id '{rid}' not found.")
    if outcome is CancelOutcome.ALREADY_TERMINAL:
        return responses.response_json(store, turn)
    # cancelled (was queued), cancelling or already cancelling: it ends cancelled (a cancel
    # accepted always wins), with exactly the output committed so far.
    return response_object(turn, "cancelled", text=store.turns.committed_text(turn), usage=turn.usage)


def cancel_by_key(store: Store, principal: Principal, key: str) -> tuple[int, dict[str, Any]]:
    """The background response the key created, cancelled as above (200); or, if none exists
    yet, a tombstone: the one it creates is born ``cancelled`` (202, no id yet). One
    conditional write either way."""
    found = store.tombstones.cancel(
        principal.tenant,
        key,
        scope=scopes.LLM_BACKGROUND,
        end_user=principal.end_user,
        req=CancelRequest(actor=principal.key_id or None, source="api"),
        with_old=True,
    )
    if isinstance(found, Tombstone):
        return 202, wire.cancelled_before_start(key)
    if found is None:
        raise errors.NotFound("No response was created with this Idempotency-Key.")
    return 200, _answer(store, found.turn_id, found.outcome, found.turn)


def llm_cancel_app(store: Store, settings: Settings) -> TurnstopResolver:
    app = TurnstopResolver(SHAPE)

    def check_size() -> None:
        if len(raw_body(app.event)) > settings.max_body_bytes:
            raise errors.PayloadTooLarge(f"Request body is too large: the limit is {settings.max_body_bytes} bytes.")

    @app.post(f"{BASE}/<response_id>/cancel")
    def handle(response_id: str) -> Response:
        principal = require_principal(app.event, store)
        check_size()
        return json_response(200, cancel(store, principal, response_id))

    @app.post(f"{BASE}/cancel")
    def handle_key() -> Response:
        principal = require_principal(app.event, store)
        check_size()
        return json_response(*cancel_by_key(store, principal, start_key(app.event)))

    return app
