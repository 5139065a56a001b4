"""The sessions OpenAPI table: every operation, its answers and the seed's examples."""

from __future__ import annotations

import turnstop_local.openapi.spec  # noqa: F401  (puts the layer on sys.path first)
from turnstop.dialects.sessions import models as sessions_models
from turnstop.dialects.sessions.answers import DeletedSession, Ledger, Session, SessionsError
from turnstop_local.openapi.requests import CancelReason
from turnstop_local.openapi.spec import (
    AFTER,
    BEARER,
    CANCEL_OK,
    IDEMPOTENCY_KEY,
    KEYED,
    LAST_EVENT_ID,
    MAX_DURATION,
    MESSAGE_EVENTS,
    RESPONSE_EVENTS,
    RID,
    SESSION_EVENTS,
    SESSION_ID,
    START_KEY,
    Dialect,
    Ok,
    Op,
    Param,
)

SESSIONS = Dialect(
    "sessions",
    "turnstop sessions API",
    "Streaming session turns and stateless `/v1/responses` over SSE, with cancel, resume and "
    'a ledger (seed 002). Errors: `{"error": {"type", "message", "request_id"}}`.',
    SessionsError,
    (
        Op(
            "POST",
            "/v1/sessions",
            "createSession",
            "Create a session",
            {201: Ok("The session", Session)},
            (401,),
            sessions_models.CreateSession,
            False,
            KEYED,
        ),
        Op(
            "DELETE",
            "/v1/sessions/{id}",
            "deleteSession",
            "Destroy a session; its in-flight turn is cancelled",
            {200: Ok("Deleted", DeletedSession)},
            (401,),
            params=(SESSION_ID, *KEYED),
        ),
        Op(
            "POST",
            "/v1/sessions/{id}/messages",
            "sendMessage",
            "Start a session turn and stream it",
            {200: Ok("The turn's events", sse=SESSION_EVENTS, events=MESSAGE_EVENTS, headers=("X-Response-Id",))},
            (401, 409, 410, 422),
            sessions_models.SendMessage,
            True,
            (SESSION_ID, *KEYED, IDEMPOTENCY_KEY, MAX_DURATION),
        ),
        Op(
            "POST",
            "/v1/responses",
            "createResponse",
            "Start a stateless turn and stream it",
            {
                200: Ok(
                    "The turn's events",
                    sse=SESSION_EVENTS.replace("message.", "response."),
                    events=RESPONSE_EVENTS,
                    headers=("X-Response-Id",),
                )
            },
            (401, 409, 410, 422),
            sessions_models.CreateResponse,
            True,
            (*KEYED, IDEMPOTENCY_KEY, MAX_DURATION),
        ),
        Op(
            "GET",
            "/v1/sessions/{id}/responses/{rid}/events",
            "resumeSessionTurn",
            "Replay a session turn's events after a cursor and follow",
            {200: Ok("The turn's events", sse=SESSION_EVENTS, events=MESSAGE_EVENTS)},
            (401,),
            params=(SESSION_ID, RID, *KEYED, LAST_EVENT_ID, AFTER),
        ),
        Op(
            "GET",
            "/v1/responses/{rid}/events",
            "resumeResponse",
            "Replay a stateless turn's events after a cursor and follow",
            {200: Ok("The turn's events", sse=SESSION_EVENTS.replace("message.", "response."), events=RESPONSE_EVENTS)},
            (401,),
            params=(RID, *KEYED, LAST_EVENT_ID, AFTER),
        ),
        Op(
            "POST",
            "/v1/sessions/{id}/responses/{rid}/cancel",
            "cancelSessionTurn",
            "Cancel an in-flight session turn",
            CANCEL_OK,
            (401,),
            CancelReason,
            False,
            (SESSION_ID, RID, *KEYED),
        ),
        Op(
            "POST",
            "/v1/responses/{rid}/cancel",
            "cancelResponse",
            "Cancel an in-flight stateless turn",
            CANCEL_OK,
            (401,),
            CancelReason,
            False,
            (RID, *KEYED),
        ),
        Op(
            "POST",
            "/v1/sessions/{id}/responses/cancel",
            "cancelSessionTurnByKey",
            "Cancel the session turn an Idempotency-Key started, or the one it will start",
            CANCEL_OK,
            (401,),
            CancelReason,
            False,
            (SESSION_ID, *KEYED, START_KEY),
        ),
        Op(
            "POST",
            "/v1/responses/cancel",
            "cancelResponseByKey",
            "Cancel the stateless turn an Idempotency-Key started, or the one it will start",
            CANCEL_OK,
            (401,),
            CancelReason,
            False,
            (*KEYED, START_KEY),
        ),
        Op(
            "GET",
            "/v1/ledger",
            "ledger",
            "The caller's usage and debit entries",
            {200: Ok("Ledger entries", Ledger)},
            (401,),
            params=(
                *KEYED,
                Param(
                    "response_id",
                    "query",
                    {"type": "string", "pattern": "^[A-Za-z0-9_-]{0,128}$"},
                    "One turn's entries (any dialect's id; empty: every entry)",
                ),
            ),
        ),
    ),
    {
        404: {"not_found": {"error": {"type": "not_found", "message": "Response not found", "request_id": "9b1c"}}},
        401: {
            "unauthorized": {
                "error": {"type": "unauthorized", "message": "Missing or invalid API key", "request_id": "9b1c"}
            }
        },
    },
    BEARER,
)
