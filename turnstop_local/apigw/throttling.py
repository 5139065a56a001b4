"""What a request answers when its function is at its concurrency limit.

- An HTTP API route (API Gateway → Lambda): Lambda refuses the invocation with a 429, and API
  Gateway turns every refused invocation into ``500 {"message":"Internal Server Error"}``
  (AWS Lambda developer guide, "Handling Lambda errors with an API Gateway API").
- A streaming route (a Function URL in AWS): ``429`` with Lambda's throttle error,
  ``{"Reason": ..., "Type": "User", "message": "Rate Exceeded."}`` and
  ``x-amzn-ErrorType: TooManyRequestsException``.

A function module may export ``throttled_response(event) -> dict`` (a payload 2.0 response) so
that a dialect answers in its own error shape; the local runtime then uses it instead.
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

__all__ = ["lambda_throttle_error", "throttled_answer"]

log = logging.getLogger("turnstop_local.http")


def lambda_throttle_error(throttled: Throttled) -> HttpResponse:
    """What a Function URL answers when its function is throttled."""
    body = {"Reason": throttled.reason, "Type": "User", "message": "Rate Exceeded."}
    return HttpResponse(
        429,
        [("content-type", "application/json"), ("x-amzn-ErrorType", "TooManyRequestsException")],
        json.dumps(body, separators=(",", ":")).encode(),
    )


def throttled_answer(
    route: Route,
    event: dict[str, Any],
    throttled: Throttled,
    hook: Callable[[Any], Any] | None = None,
) -> HttpResponse:
    """The answer to a request whose function is at its limit: the function's own
    ``throttled_response`` when it has one (and it works), else what AWS answers."""
    log.warning("throttled %s: %s", route.route_key, throttled)
    if hook is not None:
        try:
            return map_response(hook(copy.deepcopy(event)))
        except Exception:
            log.error("%s throttled_response failed:\n%s", route.function_id, traceback.format_exc())
    if route.streaming:
        return lambda_throttle_error(throttled)
    return json_message(500, "Internal Server Error")
