"""Concurrent requests in one process each read their own request.

The local runtime serves every function from one process, many requests at a time; Powertools
keeps the current event on a class shared by every resolver. A create that read another
request's Idempotency-Key once answered a task the racing cancel by key never saw (the tasks
race in tests/e2e/test_anywhere_e2e.py)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.event_handler import Response

from turnstop.http.api import TurnstopResolver, json_response
from turnstop.http.body import headers_of
from turnstop.http.errors import ErrorShape

SHAPE = ErrorShape(lambda i: {"error": {"type": i.code, "message": i.message}})


def http_event(method: str, path: str, key: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"idempotency-key": key},
        "requestContext": {"http": {"method": method, "path": path}, "requestId": key, "stage": "$default"},
        "isBase64Encoded": False,
    }


def test_requests_resolved_at_once_each_see_their_own_event_route_arguments_and_context() -> None:
    # Given two functions' resolvers in one process, and a handler that reads its request only
    # once every request is inside its handler (each resolve has set its event by then)
    inside = threading.Barrier(3, timeout=10)
    create, cancel = TurnstopResolver(SHAPE), TurnstopResolver(SHAPE)

    def seen(app: TurnstopResolver, task_id: str) -> Response:
        inside.wait()
        return json_response(
            200,
            {
                "key": headers_of(app.event).get("idempotency-key"),
                "path": app.current_event.path,
                "arg": task_id,
                "route_args": app.context.get("_route_args"),
                "context": app.lambda_context,
            },
        )

    create.post("/v1/tasks/<task_id>")(lambda task_id: seen(create, task_id))
    cancel.post("/v1/tasks/<task_id>/cancel")(lambda task_id: seen(cancel, task_id))
    # When three requests are resolved at the same time, two of them by the same resolver
    calls = [
        (create, http_event("POST", "/v1/tasks/t1", "key-1"), "ctx-1"),
        (create, http_event("POST", "/v1/tasks/t2", "key-2"), "ctx-2"),
        (cancel, http_event("POST", "/v1/tasks/t3/cancel", "key-3"), "ctx-3"),
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = list(pool.map(lambda c: json.loads(c[0].resolve(c[1], c[2])["body"]), calls))
    # Then each handler read its own request
    assert answers == [
        {"key": "key-1", "path": "/v1/tasks/t1", "arg": "t1", "route_args": {"task_id": "t1"}, "context": "ctx-1"},
        {"key": "key-2", "path": "/v1/tasks/t2", "arg": "t2", "route_args": {"task_id": "t2"}, "context": "ctx-2"},
        {
            "key": "key-3",
            "path": "/v1/tasks/t3/cancel",
            "arg": "t3",
            "route_args": {"task_id": "t3"},
            "context": "ctx-3",
        },
    ]
