"""The omni dialect's wire, as its cancel function loads it (no pydantic): the seed's error
shape and the SDK's envelope, plain dicts of the models in ``answers`` (which builds the rest).

Errors, exactly as the seed shows them:
``{"error": {"code": <HTTP status>, "message": "..."}, "metadata": {"request_id": "..."}}``.
The seed's messages are reproduced verbatim; 409s carry ``x-should-retry: false`` so the
official SDK (which retries 409 by default) does not resend a rejected turn. Every success
body is the SDK's envelope ``{"data": ..., "metadata": {"request_id": ...}}``.
"""

from __future__ import annotations

from typing import Any

from turnstop.http.errors import ErrorInfo, ErrorShape

MISSING_ACCOUNT = "Failed to deserialize query string: missing field `account_id`"
FORBIDDEN = "The caller does not have permission to execute the specified operation"
RESPONSE_NOT_FOUND = "Response not found"
THREAD_NOT_FOUND = "Thread not found"
QUERY_PREFIX = "Failed to deserialize query string: "
BODY_PREFIX = "Failed to deserialize the JSON body into the target type: "


def error_body(info: ErrorInfo) -> dict[str, Any]:
    return {"error": {"code": info.status, "message": info.message}, "metadata": {"request_id": info.request_id}}


def extra_headers(status: int) -> dict[str, str]:
    return {"x-should-retry": "false"} if status == 409 else {}


SHAPE = ErrorShape(error_body, headers=extra_headers, dialect="omni")


def envelope(data: Any, request_id: str, **meta: Any) -> dict[str, Any]:
    return {"data": data, "metadata": {"request_id": request_id, **meta}}
