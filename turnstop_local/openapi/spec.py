"""The vocabulary of the OpenAPI tables: operations, their answers and parameters, and what
every dialect shares (the statuses AWS itself may answer and its ``GatewayError``, common
headers, turn events). Each answer's model is the layer's own, imported from
``turnstop.dialects.<name>.answers`` where a table names it.

The tables themselves are one module per dialect in :mod:`turnstop_local.openapi.dialects`;
:mod:`turnstop_local.openapi.build` turns them into documents.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

_LAYER = Path(__file__).resolve().parents[2] / "layers" / "turnstop"
if str(_LAYER) not in sys.path:  # the layer's package, as the local runtime's functions see it
    sys.path.append(str(_LAYER))

from turnstop.dialects.sessions.answers import SessionsCancel, TurnCreatedEvent, TurnDeltaEvent, TurnEndEvent  # noqa: E402
from turnstop.idempotency.requests import MAX_IDEMPOTENCY_KEY  # noqa: E402

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
REF = "#/components/schemas/{model}"

# Statuses every operation can answer: a malformed header, an unknown id, a body over the
# dialect's limit (or API Gateway's 10 MB), throttling, and the server's own failures.
COMMON_ERRORS = (400, 404, 413, 429, 500, 503)
# Statuses AWS itself may answer in its own `{"message": ...}` shape, before any function runs:
# an unknown route, a body over 10 MB, an invocation Lambda throttled (500 behind the HTTP API,
# 429 on a streaming Function URL), an integration that failed or timed out.
GATEWAY_STATUSES = frozenset({404, 413, 429, 500, 503})


class GatewayError(BaseModel):
    """AWS's own answer, before any function runs: API Gateway's (unknown route, body over
    10 MB, a throttled invocation, an integration that failed or timed out) or a streaming
    Function URL's throttle (``{"Reason", "Type", "message"}``)."""

    model_config = ConfigDict(extra="allow")
    message: str


REASONS = {
    400: "Malformed request: bad JSON, wrong types, missing fields, bad headers or cursors",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Unknown, another tenant's or another end user's, or past its retention",
    409: "Conflicts with the current state",
    410: "Idempotency-Key replayed after its turn's answer is no longer kept",
    413: "Body over the size limit",
    422: "Idempotency-Key reused with a different body",
    429: "Rate limited or throttled (Retry-After where known)",
    500: "Internal error (nothing changed)",
    503: "Briefly unavailable; safe to retry (Retry-After)",
}


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "query", "header", "path"
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Ok:
    """One success status: a JSON model, or a stream (``sse`` describes its events), or none."""

    description: str
    model: type[BaseModel] | None = None
    sse: str | None = None
    events: tuple[tuple[tuple[str, ...], type[BaseModel]], ...] = ()  # (event names, their data)
    headers: tuple[str, ...] = ()
    any_of: tuple[type[BaseModel], ...] = ()
    null_body: bool = False
    examples: dict[str, Any] = field(default_factory=dict)  # name -> body, the seeds' where they show one


RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    operation_id: str
    summary: str
    ok: dict[int, Ok]
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | None = None
    body_required: bool = True
    params: tuple[Param, ...] = ()
    auth: str = "bearer"  # "bearer", "cookie", "none"
    description: str = ""
    # status -> name -> body: this operation's own error examples, in place of the dialect's
    error_examples: dict[int, dict[str, Any]] = field(default_factory=dict)
    # headers an answer carries once the request was counted (a rate limit's), and the error
    # statuses that can come after the count (the successes list them in their ``Ok``)
    counted_headers: tuple[str, ...] = ()
    counted_statuses: tuple[int, ...] = ()


@dataclass(frozen=True)
class Dialect:
    name: str
    title: str
    description: str
    error: type[BaseModel]
    ops: tuple[Op, ...]
    examples: dict[int, dict[str, Any]] = field(default_factory=dict)  # status -> name -> body
    security: dict[str, dict[str, Any]] = field(default_factory=dict)


# ----------------------------------------------------------------- shared parameters

ON_BEHALF_OF = Param(
    "X-On-Behalf-Of",
    "header",
    {"type": "string", "maxLength": 256, "pattern": "^[ -~]*$"},
    "The end user the call acts for (printable ASCII): a call naming one sees, resumes and cancels "
    "only that end user's turns.",
)
REQUEST_ID = Param(
    "X-Request-Id",
    "header",
    {"type": "string"},
    "Echoed in the answer's X-Request-Id when it is 1-200 printable ASCII characters, else replaced.",
)
STRICT_REQUEST_ID = Param(
    "X-Request-Id",
    "header",
    {"type": "string", "maxLength": 200, "pattern": "^[ -~]*$"},
    "Optional client request id echoed in the response: 1-200 printable ASCII characters, else a 400.",
)
IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY, "pattern": "^[ -~]*$"},
    "Binds the key to the turn this call starts for 24 h: the same key and body replay it, "
    "a different body is 422 (empty: no key).",
)
START_KEY = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY, "pattern": "^[ -~]+$"},
    "The key the turn was (or will be) started with.",
    required=True,
)
MAX_DURATION = Param(
    "Turnstop-Max-Duration",
    "header",
    {"type": "string", "pattern": "^[0-9]{1,3}(\\.[0-9]{1,6})?$"},
    "Seconds (0 < s <= 900) after which the runtime cancels the turn itself (source: deadline).",
)
LAST_EVENT_ID = Param(
    "Last-Event-ID",
    "header",
    {"type": "string", "pattern": "^[0-9]{0,12}$"},
    "Replay the events after this id, then follow (empty: from the start).",
)
AFTER = Param("after", "query", {"type": "string", "pattern": "^[0-9]{0,12}$"}, "As Last-Event-ID.")
ACCOUNT_ID = Param(
    "account_id",
    "query",
    {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    "Account ID for the request",
    required=True,
)
PAGE = (
    Param("page_size", "query", {"type": "integer", "minimum": 1, "maximum": 100}),
    Param("page_token", "query", {"type": "string", "maxLength": 512}),
)


def path(name: str, description: str = "") -> Param:
    return Param(name, "path", {"type": "string", "minLength": 1, "maxLength": 256}, description, required=True)


KEYED = (ON_BEHALF_OF, REQUEST_ID)
SESSION_ID = path("id", "The session id (`sess_…`)")
RID = path(
    "rid",
    "The turn's response_id: the `X-Response-Id` header of the POST that started it, or `data.id` of its first "
    "event (`msg_…` in a session, `resp_…` stateless)",
)
BEARER = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <key>` (keys are created with `keys create`; "
        "the local runtime prints a dev key).",
    }
}

# ----------------------------------------------------------------- sessions

SESSION_EVENTS = (
    "Server-sent events, each with an `id:` (its sequence number). First `message.created` "
    "(`data.id` is the response id, also in the `X-Response-Id` header), then `message.delta` "
    "(`{id, delta}`), last exactly one of `message.completed`, `message.cancelled` or "
    "`message.failed` (`{id, status, usage, billed, cancel?, error?}`). Stateless turns use "
    "`response.*` instead of `message.*`. A quiet stream carries `: keep-alive` comments."
)


def turn_events(prefix: str) -> tuple[tuple[tuple[str, ...], type[BaseModel]], ...]:
    return (
        ((f"{prefix}.created",), TurnCreatedEvent),
        ((f"{prefix}.delta",), TurnDeltaEvent),
        ((f"{prefix}.completed", f"{prefix}.cancelled", f"{prefix}.failed"), TurnEndEvent),
    )


MESSAGE_EVENTS = turn_events("message")
RESPONSE_EVENTS = turn_events("response")
LLM_EVENT_NAMES = (
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
    "response.cancelled",
    "response.failed",
    "response.incomplete",
)
CHAT_EVENT_NAMES = ("token", "confirmation_required", "done", "cancelled", "error")

CANCEL_OK = {
    202: Ok(
        "Cancellation initiated: the stream's next/last event is `…cancelled`",
        SessionsCancel,
        examples={"cancelling": {"response_id": "msg_3kTq8dZ2", "status": "cancelling"}},
    ),
    200: Ok(
        "Turn already finished: `already_complete` (idempotent)",
        SessionsCancel,
        examples={"already_complete": {"response_id": "msg_3kTq8dZ2", "status": "already_complete"}},
    ),
}
