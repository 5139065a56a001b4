"""Routing for streaming (SSE) handlers, and the WSGI adapter that serves them in AWS.

Stream handlers take an API Gateway payload-2.0 event and return a ``StreamingResponse``.
The local runtime calls them directly; in AWS the Lambda Web Adapter forwards Function URL
requests to ``wsgi_app``, which turns the WSGI environ into the same event (docs/streaming.md).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl

from turnstop.core import errors
from turnstop.http.api import DEFAULT_STATUS, ErrorBody, request_id, status_for
from turnstop.http.sse import StreamingResponse

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any], dict[str, str]], StreamingResponse]


class StreamRouter:
    def __init__(self, error_body: ErrorBody, status_table: dict[type[errors.TurnstopError], tuple[int, str]] | None = None) -> None:
        self.error_body = error_body
        self.status_table = {**DEFAULT_STATUS, **(status_table or {})}
        self.routes: list[tuple[str, re.Pattern[str], str, Handler]] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        rx = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")
        self.routes.append((method, rx, path, handler))

    def __call__(self, event: dict[str, Any], context: Any = None) -> StreamingResponse:
        method = (event.get("requestContext") or {}).get("http", {}).get("method", "GET").upper()
        path = event.get("rawPath") or "/"
        try:
            for m, rx, template, handler in self.routes:
                match = rx.match(path)
                if match and m == method:
                    event.setdefault("routeKey", f"{m} {template}")
                    return handler(event, match.groupdict())
            raise errors.NotFound("Not found")
        except errors.TurnstopError as exc:
            status, code = status_for(exc, self.status_table)
            return self._error(event, status, code, exc.message or code)
        except Exception:
            log.exception("unhandled error in stream handler, request %s", request_id(event))
            return self._error(event, 500, "internal_error", "Internal server error")

    def _error(self, event: dict[str, Any], status: int, code: str, message: str) -> StreamingResponse:
        rid = request_id(event)
        body = json.dumps(self.error_body(status, code, message, rid), separators=(",", ":"))
        return StreamingResponse(status, {"Content-Type": "application/json", "X-Request-Id": rid}, [body])


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
        "requestContext": {
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
