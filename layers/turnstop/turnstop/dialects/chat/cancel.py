"""The chat dialect's cancel endpoint, ``POST /chat/cancel`` ``{"thread_id"}``, its own function.

In order: the CSRF check (403, before anything is read), the signed-in session (one read,
401), the session's rate count (one conditional write, 429), the thread (one read, 404), then
one conditional write through ``store.chat`` that flags the action waiting for confirmation and
the reply still being written together (an UpdateItem for one, a transaction for both). The
answer is the seed's 200, for a repeat too; 409 ``nothing_to_cancel`` when a confirmation won
or nothing is in flight; the seed's 500 ``cancellation_error`` for any store failure.

Only what a cancel needs is imported (no request models, no runtime, no streaming, no agent),
so the function starts lean.
"""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools.event_handler import Response

from turnstop.core import errors, scopes
from turnstop.core.turn import CancelOutcome, CancelRequest, Status
from turnstop.dialects.chat import wire
from turnstop.dialects.chat.threads import owned_thread, thread_id_of
from turnstop.dialects.chat.web import ChatUser, Origins, count_request, signed_in
from turnstop.http.api import TurnstopResolver, json_response
from turnstop.platform.settings import Settings
from turnstop.store import Store
from turnstop.store.chat_cancels import CancelTarget
from turnstop.store.db import error_code

log = logging.getLogger(__name__)

NOTHING_TO_CANCEL = (
    "Nothing to cancel: no action on this thread is waiting for confirmation and no reply is being written"
)
ALREADY_CONFIRMED = "Nothing to cancel: the action was already confirmed"
CANCEL_REASON = "cancelled by the user"


def cancel(store: Store, user: ChatUser, thread_id: str) -> dict[str, Any]:
    """Cancel what is in flight on the thread: the action waiting for confirmation and the
    reply still being written, in one write (both flagged, or neither). A repeat answers the
    same; an action whose confirmation won is ``nothing_to_cancel`` (409) and nothing changes."""
    thread = owned_thread(store, user, thread_id)
    targets = [CancelTarget("action", thread.action, True)] if thread.action else []
    if thread.reply:
        targets.append(CancelTarget("reply", thread.reply, False))
    req = CancelRequest(reason=CANCEL_REASON, actor=user.user, source="chat")
    cancelled_before = False
    while targets:
        result = store.chat.cancel_together(
            targets, tenant=user.tenant, scope=scopes.chat(thread.id), end_user=user.user, req=req
        )
        if result.landed:
            return wire.cancel_answer(thread.id)
        still: list[CancelTarget] = []
        for target in targets:
            if target.name not in result.refused:
                still.append(target)  # would have been flagged: try again without the others
                continue
            outcome, old = result.refused[target.name]
            if outcome is CancelOutcome.ALREADY_CANCELLING or (old is not None and old.status is Status.CANCELLED):
                cancelled_before = True
            elif target.only_queued and outcome is not CancelOutcome.NOT_FOUND:
                # the action was confirmed first: the cancel lost, and changes nothing
                raise errors.Conflict(ALREADY_CONFIRMED, code="nothing_to_cancel")
        targets = still
    if cancelled_before:
        return wire.cancel_answer(thread.id)
    raise errors.Conflict(NOTHING_TO_CANCEL, code="nothing_to_cancel")


def store_failure(e: Exception) -> str:
    """A store failure's details as the cancel's error shows them (never a traceback)."""
    if isinstance(e, errors.TurnstopError):
        return e.message or type(e).__name__
    code = error_code(e)
    return f"the store refused the request ({code})" if code else f"the store failed ({type(e).__name__})"


def chat_cancel_app(store: Store, settings: Settings) -> TurnstopResolver:
    """The cancel function's resolver: its one route, CORS headers for allowed origins on
    every answer (errors included). Preflights are the API function's."""
    origins = Origins(settings)
    app = TurnstopResolver(wire.SHAPE, origins.cors_headers)

    @app.post("/chat/cancel")
    def handle() -> Response:
        """Once the request is counted, every answer carries the rate headers, errors included."""
        origins.check_state_change(app.event)
        rate: dict[str, str] = {}
        try:
            user = signed_in(app.event, store, settings)
            rate = count_request(store, user, settings.chat_rate_per_minute)
            thread_id = thread_id_of(app.event, settings.max_body_bytes)
            return json_response(200, cancel(store, user, thread_id), rate)
        except errors.RateLimited as e:  # the 61st: counted too
            failure: errors.TurnstopError = e
            rate = dict(e.details.get("rate_headers") or {})  # type: ignore[call-overload]
        except errors.Retryable as e:  # throttled, a conflict, a timeout: the seed's 500 all the same,
            # with the Retry-After every other dialect sends for a store failure worth retrying
            message = f"Failed to cancel action: {store_failure(e)}"
            failure = wire.CancellationFailed(message, retry_after=e.details.get("retry_after", 1))
        except errors.TurnstopError as e:
            failure = e
        except Exception as e:  # the store failed mid-cancel: the seed's 500, never a traceback
            log.error("chat cancel failed, request %s", app.request_id, exc_info=e)
            failure = wire.CancellationFailed(f"Failed to cancel action: {store_failure(e)}")
        answer = app.error_response(failure, app.event)
        answer.headers.update(rate)
        return answer

    return app
