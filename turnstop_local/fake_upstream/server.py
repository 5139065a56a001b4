"""The loopback server that answers as OpenAI, OpenAI-compatible model servers and Amazon Bedrock do.

    with FakeUpstream() as upstream:
        upstream.add_model("slow", Behaviour(output_tokens=500, tokens_per_second=100))
        client = openai.OpenAI(base_url=upstream.openai_base_url, api_key="k")
        ...
        record = upstream.last("slow")
        assert record.wait_disconnected(timeout=5)

Routes (``/v1`` is optional on the OpenAI ones): ``POST /v1/chat/completions``,
``POST /model/{modelId}/converse-stream`` (the model id URL-encoded, as boto3 sends it),
``POST /v1/responses``, ``GET /v1/responses/{id}`` and ``POST /v1/responses/{id}/cancel``.
Each request is served on its own daemon thread; the
connections are HTTP/1.1 keep-alive.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from turnstop_local.fake_upstream import bedrock, chat, responses
from turnstop_local.fake_upstream.behaviour import Behaviour
from turnstop_local.fake_upstream.exchange import Exchange
from turnstop_local.fake_upstream.records import Records, RequestRecord

T = TypeVar("T")

Route = Callable[["FakeUpstream", Exchange, "re.Match[str]", dict[str, list[str]]], None]

_ROUTES: list[tuple[str, re.Pattern[str], Route]] = [
    ("POST", re.compile(r"^(?:/v1)?/chat/completions$"), chat.handle),
    ("POST", re.compile(r"^/model/(?P<model>[^/]+)/converse-stream$"), bedrock.handle),
    ("POST", re.compile(r"^(?:/v1)?/responses$"), responses.handle_create),
    ("GET", re.compile(r"^(?:/v1)?/responses/(?P<id>[^/]+)$"), responses.handle_retrieve),
    ("POST", re.compile(r"^(?:/v1)?/responses/(?P<id>[^/]+)/cancel$"), responses.handle_cancel),
]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    fake: FakeUpstream

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client gone while its request was read
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        self.server.fake._dispatch(self)

    def do_POST(self) -> None:  # noqa: N802
        self.server.fake._dispatch(self)

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        self.server.fake._track(self.connection, add=False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class FakeUpstream:
    """A protocol-exact fake model server on a free loopback port.

    ``port`` 0 (the default) takes a free port. ``default`` (a plain ``Behaviour()`` unless given) answers model names never added with
    ``add_model``; with ``strict=True`` an unknown model gets the protocol's 404 instead."""

    def __init__(
        self, default: Behaviour | None = None, *, strict: bool = False, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.default = Behaviour() if default is None else default
        self.strict = strict
        self.records = Records()
        self.responses = responses.ResponseStore()
        self.stopping = threading.Event()
        self._models: dict[str, Behaviour] = {}
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        server = _Server((self._host, self._port), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.responses.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start the server first"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return f"{self.base_url}/v1"

    # -- models -----------------------------------------------------------------------------

    def add_model(self, name: str, behaviour: Behaviour) -> None:
        with self._lock:
            self._models[name] = behaviour
            self._attempts.pop(name, None)

    def behaviour_for(self, model: str | None) -> Behaviour | None:
        with self._lock:
            found = self._models.get(model or "")
        if found is None and not self.strict:
            return self.default
        return found

    def next_attempt(self, model: str) -> int:
        """Count one more request for ``model``; returns its 1-based number."""
        with self._lock:
            self._attempts[model] = self._attempts.get(model, 0) + 1
            return self._attempts[model]

    # -- records ----------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[list[RequestRecord]], T], timeout: float = 5.0) -> T:
        return self.records.wait_for(predicate, timeout)

    def last(self, model: str | None = None, timeout: float = 5.0) -> RequestRecord:
        """The latest request (for ``model``), waiting for one to arrive."""
        found = self.records.wait_for(
            lambda rs: next((r for r in reversed(rs) if model is None or r.model == model), None), timeout
        )
        assert found is not None
        return found

    # -- serving ----------------------------------------------------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        raw = _read_body(handler)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        url = urlsplit(handler.path)
        record = self.records.new(
            method=handler.command,
            path=url.path,
            headers=dict(handler.headers.items()),
            body=body,
            raw_body=raw,
            received_at=time.monotonic(),
            client=tuple(handler.client_address[:2]),
        )
        exchange = Exchange(handler, record, self.stopping)
        try:
            self._route(exchange, url.path, parse_qs(url.query))
        finally:
            record.update(served_at=time.monotonic())

    def _route(self, exchange: Exchange, path: str, query: dict[str, list[str]]) -> None:
        handler = exchange.handler
        for method, pattern, route in _ROUTES:
            match = pattern.match(path)
            if match and method == handler.command:
                route(self, exchange, match, query)
                return
        exchange.answer_json(
            404,
            {
                "error": {
                    "message": f"Unknown route {handler.command} {path}",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
        )


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""
