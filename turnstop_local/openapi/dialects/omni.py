"""The omni OpenAPI table: every operation, its answers and the seed's examples."""

from __future__ import annotations

import turnstop_local.openapi.spec  # noqa: F401  (puts the layer on sys.path first)
from turnstop.dialects.omni import models as omni_models
from turnstop.dialects.omni.answers import (
    OmniActiveResponseEnvelope,
    OmniCancelEnvelope,
    OmniCreatedEnvelope,
    OmniError,
    OmniMessagesEnvelope,
    OmniResponseEnvelope,
    OmniThreadEnvelope,
    OmniThreadsEnvelope,
)
from turnstop_local.openapi.spec import (
    ACCOUNT_ID,
    BEARER,
    IDEMPOTENCY_KEY,
    KEYED,
    MAX_DURATION,
    ON_BEHALF_OF,
    PAGE,
    REQUEST_ID,
    Dialect,
    Ok,
    Op,
    path,
)

OMNI_SEED_ERRORS = {
    400: {
        "missing_account_id": {
            "error": {"code": 400, "message": "Failed to deserialize query string: missing field `account_id`"},
            "metadata": {"request_id": "10f877f8-130b-4f02-b40a-1b6ab5d8acdf"},
        }
    },
    403: {
        "forbidden": {
            "error": {"code": 403, "message": "The caller does not have permission to execute the specified operation"},
            "metadata": {"request_id": "1c610eec-b873-4092-93aa-f14b6f501e4b"},
        }
    },
    404: {
        "not_found": {
            "error": {"code": 404, "message": "Response not found"},
            "metadata": {"request_id": "a5bc6ea6-1b72-4f31-bb7d-2bd57151decc"},
        }
    },
}
OMNI_Q = (ON_BEHALF_OF, REQUEST_ID, ACCOUNT_ID)
OMNI = Dialect(
    "omni",
    "turnstop omni API",
    "Threads with pollable responses and a `DELETE` cancel (seed 000), as the `clearstreet` SDK "
    'calls them. Every body is `{"data": ..., "metadata": {"request_id"}}`; errors are '
    '`{"error": {"code", "message"}, "metadata": {"request_id"}}`; a 409 carries '
    "`x-should-retry: false`.",
    OmniError,
    (
        Op(
            "POST",
            "/v1/omni-ai/threads",
            "createThread",
            "New thread with its first message; queues a response",
            {201: Ok("Created", OmniCreatedEnvelope)},
            (401, 403, 409, 410, 422),
            omni_models.CreateThread,
            True,
            (*KEYED, IDEMPOTENCY_KEY, MAX_DURATION),
        ),
        Op(
            "GET",
            "/v1/omni-ai/threads",
            "listThreads",
            "The caller's threads",
            {200: Ok("Threads", OmniThreadsEnvelope)},
            (401, 403),
            params=(*OMNI_Q, *PAGE),
        ),
        Op(
            "GET",
            "/v1/omni-ai/threads/{thread_id}",
            "getThread",
            "A thread",
            {200: Ok("The thread", OmniThreadEnvelope)},
            (401, 403),
            params=(path("thread_id"), *OMNI_Q),
        ),
        Op(
            "POST",
            "/v1/omni-ai/threads/{thread_id}/messages",
            "createMessage",
            "Next message of a thread; queues a response (409 while one is active)",
            {201: Ok("Created", OmniCreatedEnvelope)},
            (401, 403, 409, 410, 422),
            omni_models.CreateMessage,
            True,
            (path("thread_id"), *KEYED, IDEMPOTENCY_KEY, MAX_DURATION),
        ),
        Op(
            "GET",
            "/v1/omni-ai/threads/{thread_id}/messages",
            "listMessages",
            "A thread's immutable history",
            {200: Ok("Messages", OmniMessagesEnvelope)},
            (401, 403),
            params=(path("thread_id"), *OMNI_Q, *PAGE),
        ),
        Op(
            "GET",
            "/v1/omni-ai/threads/{thread_id}/response",
            "getActiveResponse",
            "The thread's active response (null when none)",
            {200: Ok("The active response", OmniActiveResponseEnvelope)},
            (401, 403),
            params=(path("thread_id"), *OMNI_Q),
        ),
        Op(
            "GET",
            "/v1/omni-ai/responses/{response_id}",
            "getResponse",
            "Poll a response",
            {200: Ok("The response, partial while running", OmniResponseEnvelope)},
            (401, 403),
            params=(path("response_id"), *OMNI_Q),
        ),
        Op(
            "DELETE",
            "/v1/omni-ai/responses/{response_id}",
            "cancelResponse",
            "Cancel Response",
            {
                200: Ok(
                    "`canceled: true` when this call stopped it; false when it had already ended",
                    OmniCancelEnvelope,
                    examples={
                        "seed": {
                            "data": {"canceled": False},
                            "metadata": {"request_id": "fa26a786-f5d3-48b0-80eb-778e17af4964"},
                        }
                    },
                )
            },
            (401, 403),
            params=(path("response_id", "Response identifier to cancel"), *OMNI_Q),
            description="Requests cancellation of a queued or running response. If the response has already "
            "reached a terminal status, this is an idempotent success. A canceled turn still produces a final "
            "assistant message with outcome canceled in the thread history.",
        ),
    ),
    OMNI_SEED_ERRORS,
    BEARER,
)
