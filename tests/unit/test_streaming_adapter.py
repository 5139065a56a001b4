"""The WSGI adapter that serves stream handlers behind the Lambda Web Adapter in AWS."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx

from turnstop.core import errors
from turnstop.http.sse import StreamingResponse
from turnstop.http.streaming import StreamRouter, wsgi_app


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

    def handler(event: dict[str, Any], params: dict[str, str]) -> StreamingResponse:
        seen.update(event=event, params=params)
        return StreamingResponse(200, {"Content-Type": "text/event-stream", "X-Response-Id": "resp_1"}, chunks())

    router = StreamRouter(lambda s, c, m, r: {"error": {"type": c, "message": m}})
    router.add("POST", "/v1/things/{id}", handler)
    server = make_server("127.0.0.1", 0, wsgi_app(router), handler_class=_Quiet)
    threading.Thread(target=server.handle_request, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    with httpx.Client(timeout=10) as c, c.stream(
        "POST", f"{url}/v1/things/t1?x=1", content=b'{"a":1}', headers={"Authorization": "Bearer k", "Cookie": "s=1"}
    ) as r:
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
    assert ev["body"] == '{"a":1}' and ev["routeKey"] == "POST /v1/things/{id}"
    server.server_close()


def test_the_stream_router_renders_domain_errors_in_the_dialects_shape() -> None:
    def boom(event: dict[str, Any], params: dict[str, str]) -> StreamingResponse:
        raise errors.Conflict("busy")

    router = StreamRouter(lambda s, c, m, r: {"error": {"type": c, "message": m}})
    router.add("POST", "/x", boom)
    ev = {"rawPath": "/x", "requestContext": {"http": {"method": "POST"}, "requestId": "r1"}}
    resp = router(ev)
    assert resp.status_code == 409 and "".join(resp.body) == '{"error":{"type":"conflict","message":"busy"}}'
    missing = router({"rawPath": "/nope", "requestContext": {"http": {"method": "GET"}}})
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
