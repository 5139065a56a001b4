"""The resolver every function uses, streaming routes included; request ids and principals.

``TurnstopResolver`` is Powertools' HTTP API resolver with the dialect's ``ErrorShape``
registered as its one exception handler. A route answers a ``Response``: JSON, or
``text/event-stream`` with an iterator body. ``resolve`` serves API Gateway (buffered);
``stream`` serves the streaming path (the local runtime, or the Lambda Web Adapter in AWS)
and keeps the body an iterator. Every answer, errors included, carries ``X-Request-Id``.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from turnstop.auth import Principal, principal_from_event
from turnstop.core import errors
from turnstop.http.body import headers_of
from turnstop.http.errors import ErrorShape
from turnstop.http.response import StreamingResponse
from turnstop.observability import logkeys
from turnstop.store import Store

MAX_REQUEST_ID = 200
_REQUEST_ID_NS = uuid.UUID("6f1c2a8e-3b0d-4f7a-9a51-2c7e5d9b8f40")


def valid_request_id(value: str) -> bool:
    """A caller's X-Request-Id we echo: 1–200 printable ASCII characters (no CR/LF)."""
    return 0 < len(value) <= MAX_REQUEST_ID and value.isascii() and value.isprintable()


def request_id(event: Mapping[str, Any]) -> str:
    """The caller's X-Request-Id if it is safe to echo, else a UUID (the form the documents
    show) derived from the gateway's request id, so it is stable for the request and
    correlates with its logs."""
    sent = headers_of(event).get("x-request-id")
    if sent and valid_request_id(sent):
        return sent
    gateway_id = (event.get("requestContext") or {}).get("requestId")
    if not gateway_id:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(gateway_id))
    except ValueError:
        return str(uuid.uuid5(_REQUEST_ID_NS, str(gateway_id)))


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        headers=headers or {},
    )


def sse_response(stream: StreamingResponse) -> Response:
    """A streaming answer as a route returns it; ``TurnstopResolver.stream`` keeps its body lazy."""
    return Response(status_code=stream.status_code, content_type=None, body=stream.body, headers=stream.headers)


RequestHeaders = Callable[[Mapping[str, Any]], dict[str, str]]


class TurnstopResolver(APIGatewayHttpResolver):
    """Each request's event, Lambda context and route context are the calling Python thread's own.

    Powertools keeps the event and context on the ``BaseRouter`` *class* and the route's
    arguments in the resolver's ``context`` dict, which is right for Lambda (one invocation at
    a time per process) but lets concurrent invocations in one process (the local runtime
    serves every function from one) read each other's requests: a create read another's
    Idempotency-Key. Kept thread-local here (per Python thread), they cannot."""

    def __init__(self, shape: ErrorShape, headers: RequestHeaders | None = None) -> None:
        """``headers``: what every answer carries besides X-Request-Id, errors and throttles
        included, computed from the request (a browser API's CORS headers)."""
        self._request = threading.local()
        super().__init__()
        self.shape = shape
        self.request_headers = headers
        self.exception_handler(Exception)(self._error)
        self.not_found(self._not_found)

    @property
    def current_event(self) -> Any:
        return self._request.event

    @current_event.setter
    def current_event(self, event: Any) -> None:
        self._request.event = event

    @property
    def lambda_context(self) -> Any:
        return getattr(self._request, "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, context: Any) -> None:
        self._request.lambda_context = context

    @property
    def context(self) -> dict[str, Any]:
        if not hasattr(self._request, "context"):
            self._request.context = {}
        return self._request.context

    @context.setter
    def context(self, value: dict[str, Any]) -> None:
        self._request.context = value

    @property
    def event(self) -> dict[str, Any]:
        return self.current_event.raw_event

    @property
    def request_id(self) -> str:
        return request_id(self.event)

    @property
    def remaining_ms(self) -> Callable[[], int] | None:
        """The invocation's time left (Lambda's context), when there is one."""
        return getattr(self.lambda_context, "get_remaining_time_in_millis", None)

    def error_response(self, exc: BaseException, event: Mapping[str, Any]) -> Response:
        info = self.shape.describe(exc, request_id(event))
        headers = {**self.shape.headers(info.status), **self.shape.retry_after(info)}
        return json_response(info.status, self.shape.body(info), headers)

    def _error(self, exc: Exception) -> Response:
        return self.error_response(exc, self.event)

    def _not_found(self, exc: Exception) -> Response:
        return self._error(errors.NotFound(self.shape.not_found_message))

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        logkeys.reset(dialect=self.shape.dialect)  # a new request: no key of the last one
        self.current_event, self.lambda_context = self._to_proxy_event(dict(event)), context
        result = super().resolve(event, context)
        headers = result.setdefault("headers", {})
        headers.setdefault("X-Request-Id", request_id(event))
        for name, value in self._request_headers(event).items():
            headers.setdefault(name, value)
        return result

    def _request_headers(self, event: Mapping[str, Any]) -> dict[str, str]:
        return self.request_headers(event) if self.request_headers is not None else {}

    def stream(self, event: dict[str, Any], context: Any = None) -> StreamingResponse:
        """Serve a request on the streaming path: the same routes and errors, the body lazy."""
        result = self.resolve(event, context)
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        body = result.get("body")
        chunks: Iterable[str | bytes] = [] if body is None else [body] if isinstance(body, str | bytes) else body
        return StreamingResponse(int(result["statusCode"]), headers, chunks)


def require_principal(event: Mapping[str, Any], store: Store) -> Principal:
    principal = principal_from_event(dict(event), store)
    if principal is None:
        raise errors.Unauthenticated("Missing or invalid API key")
    logkeys.bind(tenant=principal.tenant)
    return principal


def report_cancel(logger: Any, metrics: Any, response: dict[str, Any]) -> dict[str, Any]:
    """Count a cancel function's answer as ``CancelStatus<code>`` (the alarms on 500/503 watch
    these: a caught error is an answer, so Lambda's Errors metric never sees it) and log it:
    one line per cancel, with the keys the cancel path bound (``turnstop.observability.logkeys``)."""
    from aws_lambda_powertools.metrics import MetricUnit

    status = response["statusCode"]
    metrics.add_metric(name=f"CancelStatus{status}", unit=MetricUnit.Count, value=1)
    logger.log(logging.ERROR if status >= 500 else logging.INFO, "cancel answered", extra={"status": status})
    return response
