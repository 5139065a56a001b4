"""The local HTTP front door: what API Gateway (HTTP API) and the streaming Function URL do.

Routes come from the template. A request is matched like API Gateway HTTP APIs match (full match
before ``{proxy+}``, literal segments before ``{param}``, an exact method before ``ANY``, then
``$default``), turned into a payload format 2.0 event, passed through the route's Lambda
authorizer, and handed to the function; the payload 2.0 response is mapped back the way API
Gateway maps it, error bodies included (``{"message":"Not Found"}``...).

Streaming routes (``Metadata.turnstop.Routes``) call the function's ``StreamHandler`` with the
same event and write its body with chunked transfer encoding, one flush per chunk, so SSE arrives
incrementally.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from turnstop_local.lambda_host import FunctionHost
from turnstop_local.template import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, Authorizer, Route

__all__ = [
    "MAX_BODY_BYTES",
    "HttpResponse",
    "LocalApi",
    "LocalHttpServer",
    "MalformedResponse",
    "RouteTable",
    "build_authorizer_event",
    "build_http_event",
    "evaluate_authorizer_response",
    "map_response",
]

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API's payload limit
LOCAL_API_ID = "turnstoplocal"
# API Gateway HTTP APIs give up on an integration after 30 s (503 Service Unavailable).
INTEGRATION_TIMEOUT_SECONDS = 30.0
# Request bodies of these media types reach Lambda as text; everything else (a missing
# Content-Type and application/x-www-form-urlencoded included) is base64-encoded, as in AWS.
_TEXT_MEDIA_TYPES = ("application/json", "application/xml", "application/javascript")

log = logging.getLogger("turnstop_local.http")


# --------------------------------------------------------------------------------------------
# Route matching
# --------------------------------------------------------------------------------------------

_LITERAL, _PARAM, _GREEDY = 0, 1, 2


@dataclass(frozen=True)
class _CompiledRoute:
    route: Route
    segments: tuple[str, ...]
    kinds: tuple[int, ...]

    @property
    def rank(self) -> tuple[Any, ...]:
        # Smaller ranks first: a full match before a greedy one, then literal segments before
        # parameters from the left, then an exact method before ANY.
        return (_GREEDY in self.kinds, self.kinds, self.route.method == "ANY")


def _split_path(path: str) -> list[str]:
    return path.split("/")[1:] if path.startswith("/") else path.split("/")


class RouteTable:
    """Matches (method, path) to a route the way API Gateway HTTP APIs do."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.default: Route | None = None
        compiled: list[_CompiledRoute] = []
        for route in routes:
            if route.path == "$default":
                self.default = route
                continue
            segments = tuple(_split_path(route.path))
            kinds = tuple(
                _GREEDY if s.startswith("{") and s.endswith("+}") else _PARAM if s.startswith("{") else _LITERAL
                for s in segments
            )
            compiled.append(_CompiledRoute(route, segments, kinds))
        self._routes = sorted(compiled, key=lambda c: c.rank)

    @property
    def routes(self) -> list[Route]:
        return [c.route for c in self._routes] + ([self.default] if self.default else [])

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        """The route that serves the request and its path parameters, or None (404)."""
        method = method.upper()
        parts = _split_path(raw_path)
        for candidate in self._routes:
            if candidate.route.method not in (method, "ANY"):
                continue
            params = _match_segments(candidate, parts)
            if params is not None:
                return candidate.route, params
        if self.default is not None:
            return self.default, {}
        return None


def _match_segments(candidate: _CompiledRoute, parts: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for index, (segment, kind) in enumerate(zip(candidate.segments, candidate.kinds, strict=True)):
        if kind == _GREEDY:
            rest = "/".join(parts[index:])
            if not rest:
                return None
            params[segment[1:-2]] = unquote(rest)
            return params
        if index >= len(parts):
            return None
        if kind == _PARAM:
            if not parts[index]:
                return None
            params[segment[1:-1]] = unquote(parts[index])
        elif parts[index] != segment:
            return None
    return params if len(parts) == len(candidate.segments) else None


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


def new_request_id() -> str:
    """An id shaped like API Gateway's (``"JKJaXmPLvHcESHA="``)."""
    return base64.b64encode(os.urandom(11)).decode()


def _is_text(headers: Mapping[str, str], body: bytes) -> bool:
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not (media_type.startswith("text/") or media_type in _TEXT_MEDIA_TYPES):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def build_http_event(
    *,
    route: Route,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    path_parameters: Mapping[str, str],
    source_ip: str = "127.0.0.1",
    protocol: str = "HTTP/1.1",
    request_id: str | None = None,
    now: datetime | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
    api_id: str = LOCAL_API_ID,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload format 2.0 event, as AWS builds it."""
    now = now or datetime.now(UTC)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[name] = f"{merged[name]},{value}" if name in merged else value
    host = merged.get("host", "localhost")
    merged.setdefault("x-forwarded-for", source_ip)
    merged.setdefault("x-forwarded-port", host.rpartition(":")[2] if ":" in host else "80")
    merged.setdefault("x-forwarded-proto", "http")
    merged.setdefault("x-amzn-trace-id", f"Root=1-{int(now.timestamp()):08x}-{os.urandom(12).hex()}")
    if body:
        merged.setdefault("content-length", str(len(body)))
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    domain = host.split(":", 1)[0]
    request_context: dict[str, Any] = {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": method.upper(),
            "path": raw_path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": merged.get("user-agent", ""),
        },
        "requestId": request_id or new_request_id(),
        "routeKey": route.route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = merged
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    event["requestContext"] = request_context
    is_base64 = False
    if body:
        if _is_text(merged, body):
            event["body"] = body.decode("utf-8")
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            is_base64 = True
    event["isBase64Encoded"] = is_base64
    return event


def build_authorizer_event(
    http_event: Mapping[str, Any],
    authorizer: Authorizer,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """The payload 2.0 REQUEST authorizer event for a request."""
    context = http_event["requestContext"]
    route_arn = (
        f"arn:aws:execute-api:{region}:{context['accountId']}:{context['apiId']}/{context['stage']}/"
        f"{context['http']['method']}{http_event['rawPath']}"
    )
    headers = http_event.get("headers") or {}
    query = http_event.get("queryStringParameters") or {}
    identity = [headers.get(h.lower(), "") for h in authorizer.identity_headers] + [
        query.get(q, "") for q in authorizer.identity_query_strings
    ]
    event: dict[str, Any] = {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": route_arn,
        "identitySource": identity,
        "routeKey": http_event["routeKey"],
        "rawPath": http_event["rawPath"],
        "rawQueryString": http_event["rawQueryString"],
    }
    for key in ("cookies", "headers", "queryStringParameters"):
        if key in http_event:
            event[key] = http_event[key]
    event["requestContext"] = context
    if "pathParameters" in http_event:
        event["pathParameters"] = http_event["pathParameters"]
    return event


class MalformedResponse(ValueError):
    """A Lambda result API Gateway would reject (it answers 500)."""


def evaluate_authorizer_response(result: Any, simple: bool) -> tuple[bool, Any]:
    """(authorized, context) from a payload 2.0 authorizer result; MalformedResponse if invalid."""
    if not isinstance(result, dict):
        raise MalformedResponse(f"authorizer returned {type(result).__name__}, not an object")
    context = result.get("context")
    if context is not None and not isinstance(context, dict):
        raise MalformedResponse("authorizer context must be an object")
    if simple:
        allowed = result.get("isAuthorized")
        if not isinstance(allowed, bool):
            raise MalformedResponse("simple authorizer response needs a boolean isAuthorized")
        return allowed, context
    statements = ((result.get("policyDocument") or {}).get("Statement")) or []
    if not isinstance(statements, list) or "principalId" not in result:
        raise MalformedResponse("IAM authorizer response needs principalId and policyDocument.Statement")
    effects = {str(s.get("Effect", "")).lower() for s in statements if isinstance(s, dict)}
    return ("allow" in effects and "deny" not in effects), context


@dataclass
class HttpResponse:
    """A response ready for the wire."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def json_message(status: int, message: str) -> HttpResponse:
    """API Gateway's own error responses: ``{"message":"Not Found"}``."""
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return HttpResponse(status, [("content-type", "application/json")], body)


def map_response(result: Any) -> HttpResponse:
    """Map a payload 2.0 Lambda result to the HTTP response API Gateway sends."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # No statusCode: API Gateway treats the whole result as a JSON body with status 200.
        return HttpResponse(200, [("content-type", "application/json")], json.dumps(result).encode())
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int | str) or not str(status).isdigit():
        raise MalformedResponse(f"statusCode {status!r} is not an integer")
    status = int(status)
    if not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode {status} is out of range")
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((str(name), _header_value(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values if isinstance(values, list) else [values]:
            headers.append((str(name), _header_value(value)))
    for cookie in result.get("cookies") or ():
        headers.append(("set-cookie", str(cookie)))
    body = result.get("body")
    if body is None:
        payload = b""
    elif not isinstance(body, str):
        raise MalformedResponse(f"body must be a string, not {type(body).__name__}")
    elif result.get("isBase64Encoded"):
        try:
            payload = base64.b64decode(body, validate=True)
        except binascii.Error as error:
            raise MalformedResponse(f"isBase64Encoded body is not base64: {error}") from None
    else:
        payload = body.encode("utf-8")
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("content-type", "text/plain; charset=utf-8"))
    return HttpResponse(status, headers, payload)


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


class _RequestTooLarge(Exception):
    pass


class LocalApi:
    """What serves a request: the route table, the authorizers and the functions."""

    def __init__(
        self,
        routes: Iterable[Route],
        authorizers: Mapping[str, Authorizer],
        host: FunctionHost,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.routes = RouteTable(routes)
        self.authorizers = dict(authorizers)
        self.host = host
        self.integration_timeout = integration_timeout
        self.max_body_bytes = max_body_bytes

    def authorize(self, route: Route, event: dict[str, Any]) -> HttpResponse | None:
        """Run the route's authorizer; an error response to send, or None to go on."""
        if route.authorizer is None:
            return None
        authorizer = self.authorizers[route.authorizer]
        auth_event = build_authorizer_event(event, authorizer, self.host.resources.region)
        if authorizer.identity_sources and any(not v for v in auth_event["identitySource"]):
            # A configured identity source is missing: API Gateway answers without calling the function.
            return json_message(401, "Unauthorized")
        try:
            result = self.host.get(authorizer.function_id).invoke(auth_event, timeout=self.integration_timeout)
            allowed, context = evaluate_authorizer_response(result, authorizer.simple_responses)
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

    def invoke(self, route: Route, event: dict[str, Any]) -> HttpResponse:
        """Invoke the route's function and map its result; API Gateway's errors on failure."""
        try:
            result = self.host.get(route.function_id).invoke(event, timeout=self.integration_timeout)
            return map_response(result)
        except FutureTimeout:
            log.error("%s did not answer within %.0fs", route.function_id, self.integration_timeout)
            return json_message(503, "Service Unavailable")
        except Exception:
            log.error("%s failed (%s):\n%s", route.function_id, route.route_key, traceback.format_exc())
            return json_message(500, "Internal Server Error")


class LocalHttpServer(ThreadingHTTPServer):
    """A threading HTTP/1.1 server for a :class:`LocalApi`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, api: LocalApi, host: str = "127.0.0.1", port: int = 3000) -> None:
        self.api = api
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _RequestHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_in_thread(self) -> LocalHttpServer:
        self._thread = threading.Thread(target=self.serve_forever, name="turnstop-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalHttpServer

    def do_GET(self) -> None:  # http.server's naming
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def version_string(self) -> str:
        return "turnstop-local"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: _access_log writes one line per request, with the route and timing."""

    def log_message(self, format: str, *args: Any) -> None:  # signature of the base class
        # What is left of the base class's logging: malformed requests and the like.
        sys.stderr.write(f"turnstop-local: {self.address_string()} {format % args}\n")

    # ------------------------------------------------------------------ request

    def _read_body(self) -> bytes:
        limit = self.server.api.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(65537).split(b";", 1)[0].strip()
                length = int(line or b"0", 16)
                if length == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                size += length
                if size > limit:
                    raise _RequestTooLarge
                chunks.append(self.rfile.read(length))
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            raise _RequestTooLarge
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        started = time.monotonic()
        api = self.server.api
        target = urlsplit(self.path)
        raw_path, raw_query = target.path or "/", target.query
        request_id = new_request_id()
        route: Route | None = None
        try:
            body = self._read_body()
        except (_RequestTooLarge, ValueError):
            # The unread body makes the connection unusable: answer and close it.
            self.close_connection = True
            self._send(json_message(413, "Request Entity Too Large"), request_id)
            self._access_log(started, 413, None)
            return
        match = api.routes.match(self.command, raw_path)
        if match is None:
            self._send(json_message(404, "Not Found"), request_id)
            self._access_log(started, 404, None)
            return
        route, path_parameters = match
        event = build_http_event(
            route=route,
            method=self.command,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=self.headers.items(),
            body=body,
            path_parameters=path_parameters,
            source_ip=self.client_address[0],
            protocol=self.request_version,
            request_id=request_id,
            account_id=api.host.resources.account_id,
        )
        if route.streaming:
            status = self._stream(route, event, request_id)
            self._access_log(started, status, route)
            return
        response = api.authorize(route, event) or api.invoke(route, event)
        self._send(response, request_id)
        self._access_log(started, response.status, route)

    # ------------------------------------------------------------------ response

    def _send(self, response: HttpResponse, request_id: str) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("apigw-requestid", request_id)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and response.body:
                self.wfile.write(response.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    def _stream(self, route: Route, event: dict[str, Any], request_id: str) -> int:
        """Serve a streaming route; returns the status sent."""
        invocation = self.server.api.host.get(route.function_id).stream(event)
        try:
            head = invocation.head()
        except Exception:
            log.error("%s stream handler failed (%s):\n%s", route.function_id, route.route_key, traceback.format_exc())
            invocation.cancel()
            self._send(json_message(500, "Internal Server Error"), request_id)
            return 500
        try:
            self.send_response(head.status_code)
            for name, value in head.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            for cookie in head.cookies:
                self.send_header("Set-Cookie", cookie)
            self.send_header("Transfer-Encoding", "chunked")
            # A Function URL's request id header (streaming routes are not behind API Gateway in AWS).
            self.send_header("x-amzn-requestid", request_id)
            self.end_headers()
            self.wfile.flush()  # the client sees status and headers before the first chunk
            try:
                for chunk in invocation.chunks():
                    if chunk and self.command != "HEAD":
                        self.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                raise  # the client left: handled below, not a handler failure
            except Exception:
                # Headers are gone already: log, end the stream abruptly so the client sees a truncated
                # body (a Function URL cuts the connection the same way).
                log.error("%s stream body failed:\n%s", route.function_id, traceback.format_exc())
                self.close_connection = True
                return head.status_code
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            invocation.cancel()
            self.close_connection = True
        return head.status_code

    def _access_log(self, started: float, status: int, route: Route | None) -> None:
        elapsed_ms = (time.monotonic() - started) * 1000
        target = f" -> {route.function_id} ({route.route_key})" if route else ""
        sys.stderr.write(
            f'{self.client_address[0]} "{self.command} {self.path} {self.request_version}" '
            f"{status} {elapsed_ms:.0f}ms{target}\n"
        )
