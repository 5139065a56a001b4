"""API Gateway (HTTP API) emulation, without sockets: what the local front door does to a request.

- :mod:`~turnstop_local.apigw.routes`: route matching (:class:`RouteTable`);
- :mod:`~turnstop_local.apigw.events`: payload format 2.0 events and authorizer events;
- :mod:`~turnstop_local.apigw.responses`: mapping Lambda results and authorizer answers back,
  and API Gateway's own error responses;
- :mod:`~turnstop_local.apigw.throttling`: the answer of a request whose function is at its limit;
- :mod:`~turnstop_local.apigw.api`: :class:`LocalApi`, which puts them together with the functions.

The socket server that uses them is :mod:`turnstop_local.http_server`.
"""

from __future__ import annotations

from turnstop_local.apigw.api import (
    INTEGRATION_TIMEOUT_SECONDS,
    MAX_BODY_BYTES,
    THROTTLE_WAIT_SECONDS,
    ClientGone,
    LocalApi,
)
from turnstop_local.apigw.events import LOCAL_API_ID, build_authorizer_event, build_http_event, new_request_id
from turnstop_local.apigw.responses import (
    HttpResponse,
    MalformedResponse,
    evaluate_authorizer_response,
    json_message,
    map_response,
)
from turnstop_local.apigw.routes import RouteTable
from turnstop_local.apigw.throttling import lambda_throttle_error, throttled_answer

__all__ = [
    "INTEGRATION_TIMEOUT_SECONDS",
    "LOCAL_API_ID",
    "MAX_BODY_BYTES",
    "THROTTLE_WAIT_SECONDS",
    "ClientGone",
    "HttpResponse",
    "LocalApi",
    "MalformedResponse",
    "RouteTable",
    "build_authorizer_event",
    "build_http_event",
    "evaluate_authorizer_response",
    "json_message",
    "lambda_throttle_error",
    "map_response",
    "new_request_id",
    "throttled_answer",
]
