"""What serves a request once it is parsed: the route table, the authorizers and the functions,
as API Gateway (HTTP API) would put them together."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from turnstop_local.apigw.events import build_authorizer_event
from turnstop_local.apigw.responses import HttpResponse, evaluate_authorizer_response, json_message, map_response
from turnstop_local.apigw.routes import RouteTable
from turnstop_local.apigw.throttling import throttled_answer
from turnstop_local.concurrency import Throttled
from turnstop_local.lambda_host import FunctionHost
from turnstop_local.template import Authorizer, Route

__all__ = ["INTEGRATION_TIMEOUT_SECONDS", "MAX_BODY_BYTES", "THROTTLE_WAIT_SECONDS", "ClientGone", "LocalApi"]

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API's payload limit
# API Gateway HTTP APIs give up on an integration after 30 s (503 Service Unavailable).
INTEGRATION_TIMEOUT_SECONDS = 30.0
# A request that finds its function at its limit waits this long for a slot, then is throttled.
# Lambda throttles at once; the short grace absorbs the local runtime being slower than Lambda.
THROTTLE_WAIT_SECONDS = 0.1
# While waiting for a function, how often the client's connection is checked.
CLIENT_CHECK_SECONDS = 0.25

log = logging.getLogger("turnstop_local.http")

ClientCheck = Callable[[], bool]


class ClientGone(Exception):
    """The client closed its connection before its answer was ready."""


def wait_for_result(future: Future[Any], timeout: float, client_gone: ClientCheck | None = None) -> Any:
    """The invocation's result within ``timeout`` (``TimeoutError`` after), checking the client
    while waiting: :class:`ClientGone` as soon as it has left. The invocation itself runs on."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FutureTimeout
        try:
            return future.result(min(remaining, CLIENT_CHECK_SECONDS) if client_gone else remaining)
        except FutureTimeout:
            if future.done():
                raise  # the handler itself raised TimeoutError
            if client_gone is not None and client_gone():
                raise ClientGone from None


class LocalApi:
    """What serves a request: the route table, the authorizers and the functions."""

    def __init__(
        self,
        routes: Iterable[Route],
        authorizers: Mapping[str, Authorizer],
        host: FunctionHost,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
        max_body_bytes: int = MAX_BODY_BYTES,
        throttle_wait: float = THROTTLE_WAIT_SECONDS,
    ) -> None:
        self.routes = RouteTable(routes)
        self.authorizers = dict(authorizers)
        self.host = host
        self.integration_timeout = integration_timeout
        self.max_body_bytes = max_body_bytes
        self.throttle_wait = throttle_wait

    def throttled(self, route: Route, event: dict[str, Any], throttled: Throttled) -> HttpResponse:
        """The answer to a request throttled on its way to ``route``'s function."""
        hook = self.host.get(route.function_id).throttle_answer(route.streaming)
        return throttled_answer(route, event, throttled, hook)

    def authorize(
        self, route: Route, event: dict[str, Any], client_gone: ClientCheck | None = None
    ) -> HttpResponse | None:
        """Run the route's authorizer; an error response to send, or None to go on."""
        if route.authorizer is None:
            return None
        authorizer = self.authorizers[route.authorizer]
        auth_event = build_authorizer_event(event, authorizer, self.host.resources.region)
        if authorizer.identity_sources and any(not v for v in auth_event["identitySource"]):
            # A configured identity source is missing: API Gateway answers without calling the function.
            return json_message(401, "Unauthorized")
        try:
            future = self.host.get(authorizer.function_id).submit(auth_event, wait=self.throttle_wait)
            result = wait_for_result(future, self.integration_timeout, client_gone)
            allowed, context = evaluate_authorizer_response(result, authorizer.simple_responses)
        except Throttled as throttled:
            return self.throttled(route, event, throttled)
        except ClientGone:
            raise
        except FutureTimeout:
            log.error("authorizer %s timed out", authorizer.function_id)
            return json_message(503, "Service Unavailable")
        except Exception:
            log.error("authorizer %s failed:\n%s", authorizer.function_id, traceback.format_exc())
            return json_message(500, "Internal Server Error")
        if not allowed:
            return json_message(403, "Forbidden")
        event["requestContext"]["authorizer"] = {"lambda": context}
        return None

    def invoke(self, route: Route, event: dict[str, Any], client_gone: ClientCheck | None = None) -> HttpResponse:
        """Invoke the route's function and map its result; API Gateway's errors on failure.

        :class:`ClientGone` when the client leaves first (the invocation still runs to its end)."""
        try:
            future = self.host.get(route.function_id).submit(event, wait=self.throttle_wait)
            return map_response(wait_for_result(future, self.integration_timeout, client_gone))
        except Throttled as throttled:
            return self.throttled(route, event, throttled)
        except ClientGone:
            raise
        except FutureTimeout:
            log.error("%s did not answer within %.0fs", route.function_id, self.integration_timeout)
            return json_message(503, "Service Unavailable")
        except Exception:
            log.error("%s failed (%s):\n%s", route.function_id, route.route_key, traceback.format_exc())
            return json_message(500, "Internal Server Error")
