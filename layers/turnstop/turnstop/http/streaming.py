"""The WSGI adapter that serves streaming functions in AWS.

A streaming function's ``stream_handler`` (``TurnstopResolver.stream``) takes an API Gateway
payload-2.0 event and returns a ``StreamingResponse``. The local runtime calls it directly;
in AWS the Lambda Web Adapter forwards the streaming REST API's requests to ``wsgi_app``, which turns the
WSGI environ into the same event (docs/streaming.md).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl

from turnstop.http.response import StreamingResponse

log = logging.getLogger(__name__)


def event_from_wsgi(environ: dict[str, Any]) -> dict[str, Any]:
    """A payload-2.0 event from a WSGI request, so the same handlers run behind the adapter."""
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    query = environ.get("QUERY_STRING", "")
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    return {
        "version": "2.0",
        "rawPath": environ.get("PATH_INFO", "/"),
        "rawQueryString": query,
        "cookies": cookies,
        "headers": headers,
        "queryStringParameters": dict(parse_qsl(query)) or None,
        "routeKey": "$default",
        "requestContext": {
            "stage": "$default",
            "http": {"method": environ.get("REQUEST_METHOD", "GET"), "path": environ.get("PATH_INFO", "/")},
            "requestId": headers.get("x-amzn-request-id") or str(uuid.uuid4()),
        },
        "body": body.decode("utf-8", errors="replace"),
        "isBase64Encoded": False,
    }


def wsgi_app(handler: Callable[[dict[str, Any], Any], StreamingResponse]) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        resp = handler(event_from_wsgi(environ), None)
        reason = {200: "OK", 202: "Accepted"}.get(resp.status_code, "")
        start_response(f"{resp.status_code} {reason}".strip(), list(resp.headers.items()))
        for chunk in resp.body:
            yield chunk.encode() if isinstance(chunk, str) else chunk

    return app


def serve_wsgi(app: Callable[..., Iterable[bytes]], port: int) -> None:
    """Serve one request at a time, flushing every chunk (the adapter streams it on)."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s " + format, self.address_string(), *args)

    make_server("0.0.0.0", port, app, handler_class=Quiet).serve_forever()
