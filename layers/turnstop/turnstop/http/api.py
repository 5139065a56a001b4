"""Resolver factory, request ids, principals and request bodies for the non-streaming functions.

Each dialect hands over its error shape once; domain errors are mapped by class (walking
the MRO), never by message text.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from pydantic import BaseModel, ValidationError

from turnstop.auth import Principal, principal_from_event
from turnstop.core import errors
from turnstop.store.dynamo import IdempotencyClaim, Store

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

# (status, error code) per domain error class; a dialect may override entries.
DEFAULT_STATUS: dict[type[errors.TurnstopError], tuple[int, str]] = {
    errors.InvalidRequest: (400, "invalid_request"),
    errors.Unauthenticated: (401, "unauthorized"),
    errors.Forbidden: (403, "forbidden"),
    errors.NotFound: (404, "not_found"),
    errors.Conflict: (409, "conflict"),
    errors.PayloadTooLarge: (413, "payload_too_large"),
    errors.IdempotencyMismatch: (422, "idempotency_key_reused"),
    errors.RateLimited: (429, "rate_limited"),
    errors.Retryable: (503, "unavailable"),
    errors.TurnstopError: (500, "internal_error"),
}

ErrorBody = Callable[[int, str, str, str], dict[str, Any]]  # (status, code, message, request_id)


def status_for(exc: errors.TurnstopError, table: Mapping[type[errors.TurnstopError], tuple[int, str]]) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return 500, "internal_error"


_REQUEST_ID_NS = uuid.UUID("6f1c2a8e-3b0d-4f7a-9a51-2c7e5d9b8f40")


def request_id(event: Mapping[str, Any]) -> str:
    """The caller's X-Request-Id if sent, else a UUID (the form the documents show) derived
    from API Gateway's request id, so it is stable for the request and correlates with its logs."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if headers.get("x-request-id"):
        return str(headers["x-request-id"])[:200]
    gateway_id = (event.get("requestContext") or {}).get("requestId")
    if not gateway_id:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(gateway_id))
    except ValueError:
        return str(uuid.uuid5(_REQUEST_ID_NS, gateway_id))


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, separators=(",", ":")),
        headers=headers or {},
    )


def make_resolver(
    error_body: ErrorBody,
    status_table: Mapping[type[errors.TurnstopError], tuple[int, str]] | None = None,
    extra_headers: Callable[[int], dict[str, str]] | None = None,
) -> APIGatewayHttpResolver:
    table = {**DEFAULT_STATUS, **(status_table or {})}
    app = APIGatewayHttpResolver()

    def render(status: int, code: str, message: str) -> Response:
        rid = request_id(app.current_event.raw_event)
        headers = {"X-Request-Id": rid, **(extra_headers(status) if extra_headers else {})}
        return json_response(status, error_body(status, code, message, rid), headers)

    @app.exception_handler(errors.TurnstopError)
    def _domain(exc: errors.TurnstopError) -> Response:
        status, code = status_for(exc, table)
        return render(status, code, exc.message or code)

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error, request %s", request_id(app.current_event.raw_event))
        return render(500, "internal_error", "Internal server error")

    @app.not_found
    def _not_found(exc: Exception) -> Response:
        return render(404, "not_found", "Not found")

    return app


def count_cancel_status(metrics: Any, response: dict[str, Any]) -> dict[str, Any]:
    """Count a cancel function's answer as ``CancelStatus<code>``: the alarms on 500/503
    watch these (a caught error is an answer, so Lambda's Errors metric never sees it)."""
    from aws_lambda_powertools.metrics import MetricUnit

    metrics.add_metric(name=f"CancelStatus{response['statusCode']}", unit=MetricUnit.Count, value=1)
    return response


def require_principal(event: Mapping[str, Any], store: Store) -> Principal:
    principal = principal_from_event(dict(event), store)
    if principal is None:
        raise errors.Unauthenticated("Missing or invalid API key")
    return principal


MAX_IDEMPOTENCY_KEY = 255


def idempotency_claim(event: Mapping[str, Any], principal: Principal) -> IdempotencyClaim | None:
    """The request's Idempotency-Key bound to what it asks for: route, path, end user and the
    body as parsed JSON (so whitespace and key order do not change a match)."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    key = headers.get("idempotency-key") or None
    if key is None:
        return None
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise errors.InvalidRequest(f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY} characters")
    body = raw_body(event)
    try:
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    fingerprint = IdempotencyClaim.fingerprint_of(
        str(event.get("routeKey", "")), str(event.get("rawPath", "")), principal.end_user or "", body
    )
    return IdempotencyClaim(principal.tenant, key, fingerprint)


def raw_body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        import base64

        return base64.b64decode(body)
    return body.encode() if isinstance(body, str) else bytes(body)


def parse_body(event: Mapping[str, Any], model: type[M], max_bytes: int, *, optional: bool = False) -> M:
    """Validate a JSON body into ``model``; size, syntax and type errors become domain errors."""
    data = raw_body(event)
    if len(data) > max_bytes:
        raise errors.PayloadTooLarge(f"Request body exceeds {max_bytes} bytes")
    if not data.strip():
        if optional:
            return model.model_validate({})
        raise errors.InvalidRequest("Request body is required")
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise errors.InvalidRequest(f"Malformed JSON body: {e}") from None
    if not isinstance(obj, dict):
        raise errors.InvalidRequest("Request body must be a JSON object")
    try:
        return model.model_validate(obj)
    except ValidationError as e:
        raise errors.InvalidRequest(describe_validation_error(e)) from None


def describe_validation_error(e: ValidationError) -> str:
    first = e.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"Invalid field '{where}': {first.get('msg', 'invalid value')}"
