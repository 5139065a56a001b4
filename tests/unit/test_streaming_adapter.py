"""The WSGI adapter that serves stream handlers behind the Lambda Web Adapter in AWS."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
from aws_lambda_powertools.event_handler import Response

from turnstop.core import errors
from turnstop.http.api import TurnstopResolver, sse_response
from turnstop.http.errors import ErrorShape
from turnstop.http.response import StreamingResponse
from turnstop.http.streaming import wsgi_app

SHAPE = ErrorShape(lambda i: {"error": {"type": i.code, "message": i.message}})


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_the_wsgi_adapter_builds_the_event_and_streams_each_chunk_as_it_comes() -> None:
    seen: dict[str, Any] = {}
    gate = threading.Event()

    def chunks() -> Iterator[str]:
        yield "id: 1\nevent: a\ndata: {}\n\n"
        gate.wait(timeout=10)  # the client must have read chunk 1 before chunk 2 exists
        yield "id: 2\nevent: b\ndata: {}\n\n"

    app = TurnstopResolver(SHAPE)

    @app.post("/v1/things/<thing_id>")
    def handler(thing_id: str) -> Response:
        seen.update(event=app.event, params={"id": thing_id})
        return sse_response(
            StreamingResponse(200, {"Content-Type": "text/event-stream", "X-Response-Id": "resp_1"}, chunks())
        )

    server = make_server("127.0.0.1", 0, wsgi_app(app.stream), handler_class=_Quiet)
    threading.Thread(target=server.handle_request, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    with (
        httpx.Client(timeout=10) as c,
        c.stream(
            "POST",
            f"{url}/v1/things/t1?x=1",
            content=b'{"a":1}',
            headers={"Authorization": "Bearer k", "Cookie": "s=1"},
        ) as r,
    ):
        assert r.headers["X-Response-Id"] == "resp_1"
        lines = r.iter_lines()
        assert next(lines) == "id: 1"
        gate.set()
        rest = list(lines)
    assert "id: 2" in rest
    ev = seen["event"]
    assert seen["params"] == {"id": "t1"}
    assert ev["rawPath"] == "/v1/things/t1" and ev["queryStringParameters"] == {"x": "1"}
    assert ev["headers"]["authorization"] == "Bearer k" and ev["cookies"] == ["s=1"]
    assert ev["body"] == '{"a":1}' and ev["requestContext"]["http"]["method"] == "POST"
    server.server_close()


def test_streaming_routes_render_domain_errors_in_the_dialects_shape() -> None:
    app = TurnstopResolver(SHAPE)

    @app.post("/x")
    def boom() -> Response:
        raise errors.Conflict("busy")

    ev = {
        "rawPath": "/x",
        "requestContext": {"http": {"method": "POST", "path": "/x"}, "requestId": "r1", "stage": "$default"},
    }
    resp = app.stream(ev)
    assert resp.status_code == 409 and "".join(resp.body) == '{"error":{"type":"conflict","message":"busy"}}'
    missing = app.stream(
        {"rawPath": "/nope", "requestContext": {"http": {"method": "GET", "path": "/nope"}, "stage": "$default"}}
    )
    assert missing.status_code == 404


def test_request_ids_are_uuids_as_the_documents_show_and_stable_per_request() -> None:
    import uuid

    from turnstop.http.api import request_id

    gateway = {"requestContext": {"requestId": "JKJaXmPLvHcESHA="}}
    rid = request_id(gateway)
    assert str(uuid.UUID(rid)) == rid and request_id(gateway) == rid
    assert request_id({"requestContext": {"requestId": "fa26a786-f5d3-48b0-80eb-778e17af4964"}}) == (
        "fa26a786-f5d3-48b0-80eb-778e17af4964"
    )
    assert request_id({"headers": {"X-Request-Id": "client-123"}, **gateway}) == "client-123"
