"""The local HTTP front door's socket server: a threading HTTP/1.1 server that hands each request
to the API Gateway emulation (:mod:`turnstop_local.apigw`) and writes the answer.

Buffered routes are answered with one response, as API Gateway (HTTP API) sends it. Streaming
routes (``Metadata.turnstop.Routes``) call the function's ``StreamHandler`` with the same event and
write its body with chunked transfer encoding, one flush per chunk, so SSE arrives incrementally
(what the streaming Function URL does in AWS).

Limits that keep one client from starving the rest: a listen backlog of ``LISTEN_BACKLOG``
connections; a socket timeout (``TURNSTOP_LOCAL_IDLE_TIMEOUT_SECONDS``, default 60) on a
connection that is silent while a request is expected, or stalled while its request arrives, or
that stops reading an answer being written (a quiet stream is never cut: nothing is read from or
written to it meanwhile); and a check of the client's connection while its answer is awaited, so a client that
leaves is noticed within ``CLIENT_CHECK_SECONDS`` and its stream's body closed.

The emulation's public names are re-exported here.
"""

from __future__ import annotations

import logging
import queue
import select
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from turnstop_local.apigw import (
    INTEGRATION_TIMEOUT_SECONDS,
    LOCAL_API_ID,
    MAX_BODY_BYTES,
    THROTTLE_WAIT_SECONDS,
    ClientGone,
    HttpResponse,
    LocalApi,
    MalformedResponse,
    RouteTable,
    build_authorizer_event,
    build_http_event,
    evaluate_authorizer_response,
    json_message,
    map_response,
    new_request_id,
)
from turnstop_local.apigw.api import CLIENT_CHECK_SECONDS
from turnstop_local.knobs import IDLE_TIMEOUT_SECONDS, number_setting
from turnstop_local.lambda_host import StreamHead, StreamInvocation, Throttled
from turnstop_local.openapi import serve as openapi_pages
from turnstop_local.playground import Playground
from turnstop_local.template import Route

__all__ = [
    "DEFAULT_IDLE_TIMEOUT_SECONDS",
    "INTEGRATION_TIMEOUT_SECONDS",
    "LISTEN_BACKLOG",
    "LOCAL_API_ID",
    "MAX_BODY_BYTES",
    "THROTTLE_WAIT_SECONDS",
    "HttpResponse",
    "LocalApi",
    "LocalHttpServer",
    "MalformedResponse",
    "RouteTable",
    "build_authorizer_event",
    "build_http_event",
    "evaluate_authorizer_response",
    "json_message",
    "map_response",
    "new_request_id",
]

log = logging.getLogger("turnstop_local.http")

# Connections the kernel queues before the server accepts them (ThreadingHTTPServer's is 5).
LISTEN_BACKLOG = 1024
DEFAULT_IDLE_TIMEOUT_SECONDS = 60.0
# A client is gone when writing to it fails or stalls past the idle timeout.
_CLIENT_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
_SKIPPED_HEADERS = ("content-length", "transfer-encoding", "connection")


class _RequestTooLarge(Exception):
    pass


class LocalHttpServer(ThreadingHTTPServer):
    """A threading HTTP/1.1 server for a :class:`LocalApi`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self, api: LocalApi, host: str = "127.0.0.1", port: int = 3000, idle_timeout: float | None = None
    ) -> None:
        self.api = api
        self.idle_timeout = (
            idle_timeout
            if idle_timeout is not None
            else number_setting(IDLE_TIMEOUT_SECONDS, DEFAULT_IDLE_TIMEOUT_SECONDS, minimum=0.1, maximum=86400)
        )
        self._thread: threading.Thread | None = None
        self._count_lock = threading.Lock()
        self.clients_gone = 0  # answers whose client left before they were complete
        self.playground = Playground()  # /playground (docs/playground.md)
        super().__init__((host, port), _RequestHandler)

    def note_client_gone(self) -> None:
        with self._count_lock:
            self.clients_gone += 1

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

    def setup(self) -> None:
        super().setup()
        # The socket timeout: reading a request (and writing an answer) may stall this long.
        self.connection.settimeout(self.server.idle_timeout)

    def handle(self) -> None:
        try:
            super().handle()
        except ConnectionError:
            # The client reset the connection (closing it with an answer still unread, say): there
            # is nobody left to answer, and nothing to report.
            self.close_connection = True

    def do_GET(self) -> None:  # http.server's naming
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def __getattr__(self, name: str) -> Any:
        """Every other method (TRACE, CONNECT, one made up) is routed too, as API Gateway does:
        no route has it, so it gets the gateway's 404 ``{"message":"Not Found"}``, never
        http.server's ``501 Unsupported method``."""
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def version_string(self) -> str:
        return "turnstop-local"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: _access_log writes one line per request, with the route and timing."""

    def log_message(self, format: str, *args: Any) -> None:  # signature of the base class
        # What is left of the base class's logging: malformed requests and the like. An idle
        # connection closed by the socket timeout is routine, not worth a line.
        if format.startswith("Request timed out"):
            return
        sys.stderr.write(f"turnstop-local: {self.address_string()} {format % args}\n")

    def _client_gone(self) -> bool:
        """Whether the client has closed its connection (peeks; never consumes what it sent)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

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
            # not a template route: a page of the local runtime itself, else API Gateway's 404
            page = openapi_pages.answer(self.command, raw_path, dict(self.headers.items()))
            page = page or self.server.playground.answer(self.command, raw_path, self.headers, self.client_address[0])
            response = page or json_message(404, "Not Found")
            self._send(response, request_id)
            self._access_log(started, response.status, None)
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
        status = self._stream(route, event, request_id) if route.streaming else self._answer(route, event, request_id)
        self._access_log(started, status, route)

    def _answer(self, route: Route, event: dict[str, Any], request_id: str) -> int | str:
        """Serve a buffered route; returns the status sent."""
        api = self.server.api
        try:
            response = api.authorize(route, event, self._client_gone) or api.invoke(route, event, self._client_gone)
        except ClientGone:
            self._client_left()
            return "client closed"
        self._send(response, request_id)
        return response.status

    def _client_left(self) -> None:
        self.close_connection = True
        self.server.note_client_gone()

    # ------------------------------------------------------------------ response

    def _send(self, response: HttpResponse, request_id: str, request_id_header: str = "apigw-requestid") -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in _SKIPPED_HEADERS:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header(request_id_header, request_id)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and response.body:
                self.wfile.write(response.body)
            self.wfile.flush()
        except _CLIENT_ERRORS:
            self._client_left()

    def _stream(self, route: Route, event: dict[str, Any], request_id: str) -> int | str:
        """Serve a streaming route; returns the status sent."""
        api = self.server.api
        try:
            invocation = api.host.get(route.function_id).stream(event, wait=api.throttle_wait)
        except Throttled as throttled:
            response = api.throttled(route, event, throttled)
            # A Function URL's request id header (streaming routes are not behind API Gateway in AWS).
            self._send(response, request_id, "x-amzn-requestid")
            return response.status
        try:
            head = self._wait_for_head(invocation)
        except ClientGone:
            invocation.cancel()
            self._client_left()
            return "client closed"
        except Exception:
            log.error("%s stream handler failed (%s):\n%s", route.function_id, route.route_key, traceback.format_exc())
            invocation.cancel()
            self._send(json_message(500, "Internal Server Error"), request_id)
            return 500
        try:
            self._write_head(head, request_id)
            if self._write_body(route, invocation):
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (*_CLIENT_ERRORS, ClientGone):
            invocation.cancel()  # the body is closed on its own thread, and the slot released
            self._client_left()
        return head.status_code

    def _wait_for_head(self, invocation: StreamInvocation) -> StreamHead:
        while True:
            try:
                return invocation.head(timeout=CLIENT_CHECK_SECONDS)
            except queue.Empty:
                if self._client_gone():
                    raise ClientGone from None

    def _write_head(self, head: StreamHead, request_id: str) -> None:
        self.send_response(head.status_code)
        for name, value in head.headers.items():
            if name.lower() not in _SKIPPED_HEADERS:
                self.send_header(name, value)
        for cookie in head.cookies:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Transfer-Encoding", "chunked")
        # A Function URL's request id header (streaming routes are not behind API Gateway in AWS).
        self.send_header("x-amzn-requestid", request_id)
        self.end_headers()
        self.wfile.flush()  # the client sees status and headers before the first chunk

    def _write_body(self, route: Route, invocation: StreamInvocation) -> bool:
        """Write the body's chunks as they come, one flush each; False if the body failed.

        While the body is quiet the client's connection is checked every CLIENT_CHECK_SECONDS:
        :class:`ClientGone` as soon as it has left, rather than at the next write."""
        while True:
            try:
                chunk = invocation.next_chunk(timeout=CLIENT_CHECK_SECONDS)
            except queue.Empty:
                if self._client_gone():
                    raise ClientGone from None
                continue
            except Exception:
                # Headers are gone already: log, end the stream abruptly so the client sees a truncated
                # body (a Function URL cuts the connection the same way).
                log.error("%s stream body failed:\n%s", route.function_id, traceback.format_exc())
                self.close_connection = True
                return False
            if chunk is None:
                return True
            if chunk and self.command != "HEAD":
                self.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()

    def _access_log(self, started: float, status: int | str, route: Route | None) -> None:
        elapsed_ms = (time.monotonic() - started) * 1000
        target = f" -> {route.function_id} ({route.route_key})" if route else ""
        sys.stderr.write(
            f'{self.client_address[0]} "{self.command} {self.path} {self.request_version}" '
            f"{status} {elapsed_ms:.0f}ms{target}\n"
        )
