"""The omni dialect's error shape, exactly as the seed shows it:
``{"error": {"code": <HTTP status>, "message": "..."}, "metadata": {"request_id": "..."}}``.

The seed's messages are reproduced verbatim; 409s carry ``x-should-retry: false`` so the
official SDK (which retries 409 by default) does not resend a rejected turn.
"""

from __future__ import annotations

from typing import Any

MISSING_ACCOUNT = "Failed to deserialize query string: missing field `account_id`"
FORBIDDEN = "The caller does not have permission to execute the specified operation"
RESPONSE_NOT_FOUND = "Response not found"
THREAD_NOT_FOUND = "Thread not found"
QUERY_PREFIX = "Failed to deserialize query string: "
BODY_PREFIX = "Failed to deserialize the JSON body into the target type: "


def error_body(status: int, code: str, message: str, request_id: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message}, "metadata": {"request_id": request_id}}


def extra_headers(status: int) -> dict[str, str]:
    return {"x-should-retry": "false"} if status == 409 else {}
