"""What a request answers when its function is at its concurrency limit.

- An HTTP API route (API Gateway → Lambda): Lambda refuses the invocation with a 429, and API
  Gateway turns every refused invocation into ``500 {"message":"Internal Server Error"}``
  (AWS Lambda developer guide, "Handling Lambda errors with an API Gateway API").
- A streaming route (a Function URL in AWS): ``429`` with Lambda's throttle error,
  ``{"Reason": ..., "Type": "User", "message": "Rate Exceeded."}`` and
  ``x-amzn-ErrorType: TooManyRequestsException``.

A function whose module holds its dialect's resolver (``app``, a ``TurnstopResolver``) is
answered in that dialect's error shape instead: the local runtime wraps the resolver
(``dialect_answer``); the functions themselves carry nothing for it.
"""

from __future__ import annotations

import copy
import json
import logging
import traceback
from collections.abc import Callable
from typing import Any

from turnstop_local.apigw.responses import HttpResponse, json_message, map_response
from turnstop_local.concurrency import Throttled
from turnstop_local.template import Route

__all__ = ["dialect_answer", "lambda_throttle_error", "throttled_answer"]

log = logging.getLogger("turnstop_local.http")


def lambda_throttle_error(throttled: Throttled) -> HttpResponse:
    """What a Function URL answers when its function is throttled."""
    body = {"Reason": throttled.reason, "Type": "User", "message": "Rate Exceeded."}
    return HttpResponse(
        429,
        [("content-type", "application/json"), ("x-amzn-ErrorType", "TooManyRequestsException")],
        json.dumps(body, separators=(",", ":")).encode(),
    )


RATE_LIMITED = "Too many concurrent requests; retry shortly"


def dialect_answer(app: Any) -> Callable[[Any], Any] | None:
    """What a function answers when it is at its limit, in its dialect's error shape: its
    resolver's ``error_response`` for a rate limit, with the headers every answer of that
    resolver carries and the request id. None when the module holds no such resolver."""
    error_response = getattr(app, "error_response", None)
    if not callable(error_response):
        return None

    def answer(event: dict[str, Any]) -> dict[str, Any]:
        from turnstop.core.errors import RateLimited
        from turnstop.http.api import request_id

        response = error_response(RateLimited(RATE_LIMITED), event)
        own = getattr(app, "request_headers", None)
        return {
            "statusCode": response.status_code,
            "headers": {**(own(event) if callable(own) else {}), **response.headers, "X-Request-Id": request_id(event)},
            "body": response.body,
        }

    return answer


def throttled_answer(
    route: Route,
    event: dict[str, Any],
    throttled: Throttled,
    hook: Callable[[Any], Any] | None = None,
) -> HttpResponse:
    """The answer to a request whose function is at its limit: its dialect's (``hook``, from
    ``dialect_answer``) when it has one (and it works), else what AWS answers."""
    log.warning("throttled %s: %s", route.route_key, throttled)
    if hook is not None:
        try:
            return map_response(hook(copy.deepcopy(event)))
        except Exception:
            log.error("%s dialect throttle answer failed:\n%s", route.function_id, traceback.format_exc())
    if route.streaming:
        return lambda_throttle_error(throttled)
    return json_message(500, "Internal Server Error")
