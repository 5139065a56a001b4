"""The chat (and its sign-in) OpenAPI table: every operation, its answers and the seed's examples."""

from __future__ import annotations

import turnstop_local.openapi.spec  # noqa: F401  (puts the layer on sys.path first)
from turnstop.dialects.chat import models as chat_models
from turnstop.dialects.chat.answers import (
    ChatCancelled,
    ChatConfirmed,
    ChatError,
    ChatReply,
    ChatStreamEvent,
    ChatThread,
    SignedIn,
    SignedOut,
)
from turnstop.dialects.chat.cancel import ALREADY_CONFIRMED, NOTHING_TO_CANCEL
from turnstop.dialects.chat.service import NOTHING_TO_CONFIRM
from turnstop_local.openapi.requests import AnyJson, ChatThreadRef
from turnstop_local.openapi.spec import (
    CHAT_EVENT_NAMES,
    RATE_HEADERS,
    REQUEST_ID,
    Dialect,
    Ok,
    Op,
    Param,
    path,
)

CSRF = (
    "State-changing requests (every POST) must be `Content-Type: application/json` and, when the "
    "browser sends an `Origin`, come from an allowed origin (the API's own, "
    "`TURNSTOP_PUBLIC_BASE_URL`, `TURNSTOP_ALLOWED_ORIGINS`); otherwise `403`. CORS with "
    "credentials for allowed origins; preflights (`OPTIONS`) allow `Content-Type` and `X-Request-Id`."
)
CHAT_EVENTS = (
    'Server-sent events without ids, each `event: <name>` and `data: {"event_type": <name>, "data": {...}}`: '
    "`token` (`{thread_id, text}`)…, `confirmation_required` (`{thread_id, message}`), then one of "
    "`done` (`{thread_id, requires_confirmation}`), `cancelled` or `error`."
)
THREAD_BODY = ChatThreadRef
CHAT = Dialect(
    "chat",
    "turnstop chat API",
    "A browser-facing chat whose agent plans actions that wait for the user's confirmation "
    "(seed 001), with OAuth 2.0 sign-in (authorization code + PKCE) and a server-side session in "
    "the `HttpOnly` `session_id` cookie. " + CSRF + ' Errors: `{"error": <code>, "message"}`.',
    ChatError,
    (
        Op(
            "POST",
            "/chat",
            "chat",
            "Send a message; the reply, and a question when it planned an action",
            {
                200: Ok(
                    "The reply",
                    ChatReply,
                    headers=("X-Thread-Id",),
                    examples={
                        "requires_confirmation": {
                            "response": "I can schedule that meeting for you.",
                            "thread_id": "thread_xyz789",
                            "requires_confirmation": True,
                            "confirmation_message": "Should I create a meeting titled 'Project Review' on March 10th "
                            "at 3 PM?",
                        }
                    },
                )
            },
            (401, 403, 409),
            chat_models.SendMessage,
            True,
            (REQUEST_ID,),
            "cookie",
        ),
        Op(
            "POST",
            "/chat/stream",
            "chatStream",
            "The same turn as SSE",
            {200: Ok("The reply's events", sse=CHAT_EVENTS, events=((CHAT_EVENT_NAMES, ChatStreamEvent),))},
            (401, 403, 409),
            chat_models.SendMessage,
            True,
            (REQUEST_ID,),
            "cookie",
        ),
        Op(
            "POST",
            "/chat/cancel",
            "cancelAction",
            "Cancel a pending action that was planned by the agent and is waiting for user confirmation",
            {
                200: Ok(
                    "Action cancelled successfully",
                    ChatCancelled,
                    headers=RATE_HEADERS,
                    examples={
                        "seed": {
                            "thread_id": "thread_xyz789",
                            "status": "cancelled",
                            "response": "Action cancelled.",
                            "cancelled": True,
                        }
                    },
                )
            },
            (401, 403, 409),
            THREAD_BODY,
            True,
            (REQUEST_ID,),
            "cookie",
            "Rate limit: 60 requests per minute per session (429 after). Every answer to a signed-in "
            "request carries the `X-RateLimit-*` headers, errors included (a 401 or 403 is refused before "
            "it is counted). Stops a streaming reply too.",
            error_examples={
                409: {
                    "nothing_to_cancel": {"error": "nothing_to_cancel", "message": NOTHING_TO_CANCEL},
                    "already_confirmed": {"error": "nothing_to_cancel", "message": ALREADY_CONFIRMED},
                },
                500: {
                    "cancellation_error": {
                        "error": "cancellation_error",
                        "message": "Failed to cancel action: <error details>",
                    }
                },
            },
            counted_headers=RATE_HEADERS,
            counted_statuses=(400, 404, 409, 413, 429, 500),
        ),
        Op(
            "POST",
            "/chat/confirm",
            "confirmAction",
            "Execute the pending action",
            {200: Ok("Confirmed and executed", ChatConfirmed)},
            (401, 403, 409),
            THREAD_BODY,
            True,
            (REQUEST_ID,),
            "cookie",
            error_examples={
                409: {"nothing_to_confirm": {"error": "nothing_to_confirm", "message": NOTHING_TO_CONFIRM}},
            },
        ),
        Op(
            "GET",
            "/chat/threads/{thread_id}",
            "getThread",
            "A thread's messages and actions",
            {200: Ok("The thread", ChatThread)},
            (401, 403),
            params=(path("thread_id"), REQUEST_ID),
            auth="cookie",
        ),
        Op(
            "GET",
            "/auth/login",
            "login",
            "Start the sign-in: a redirect to the OpenID provider",
            {
                302: Ok(
                    "To the provider's authorize endpoint (sets the short-lived `turnstop_login` cookie)",
                    headers=("Location", "Set-Cookie"),
                )
            },
            (),
            params=(
                Param("login_hint", "query", {"type": "string", "maxLength": 256}),
                Param("return_to", "query", {"type": "string", "maxLength": 2048}, "A path on this site"),
            ),
            auth="none",
        ),
        Op(
            "GET",
            "/auth/callback",
            "callback",
            "The provider's redirect back: sets the `session_id` cookie",
            {
                200: Ok("Signed in", SignedIn, headers=("Set-Cookie",)),
                302: Ok("Signed in; back to `return_to`", headers=("Location", "Set-Cookie")),
            },
            (401,),
            params=(
                Param("code", "query", {"type": "string", "maxLength": 2048}),
                Param("state", "query", {"type": "string", "maxLength": 512}),
                Param("error", "query", {"type": "string", "maxLength": 256}),
            ),
            auth="none",
        ),
        Op(
            "POST",
            "/auth/logout",
            "logout",
            "End the session and clear the cookie",
            {200: Ok("Signed out", SignedOut, headers=("Set-Cookie",))},
            (401, 403),
            AnyJson,
            False,
            params=(REQUEST_ID,),
            auth="cookie",
        ),
        Op(
            "GET",
            "/auth/session",
            "whoami",
            "Who is signed in",
            {200: Ok("The signed-in user", SignedIn)},
            (401,),
            params=(REQUEST_ID,),
            auth="cookie",
        ),
    ),
    {
        401: {
            "not_authenticated": {
                "error": "not_authenticated",
                "message": "Not authenticated: sign in through /auth/login to get a valid session_id cookie",
            }
        },
        409: {
            "action_pending": {
                "error": "action_pending",
                "message": "An action on this thread is waiting for confirmation: confirm it or cancel it first",
            },
            "reply_in_progress": {
                "error": "reply_in_progress",
                "message": "A reply is still being written on this thread: wait for it or cancel it first",
            },
        },
    },
    {
        "sessionCookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": "session_id",
            "description": "Requires a valid session cookie (session_id) obtained through the OAuth flow "
            "(`GET /auth/login`). " + CSRF,
        }
    },
)
