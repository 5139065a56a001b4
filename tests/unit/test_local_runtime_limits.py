"""The local runtime under load: the listen backlog and idle-socket timeouts.

A tiny fake repo (its own template.yaml and functions) served over loopback, moto as the store.
Functions block on gate files the tests create; waits poll a condition with a deadline.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from turnstop_local.http_server import LocalHttpServer
from turnstop_local.runtime import LocalRuntime

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 30
    Environment: {Variables: {FAKE_LOG: __LOG__}}
Resources:
  OpenFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/open/
      Handler: app.handler
      Events:
        Open: {Type: HttpApi, Properties: {Path: /open, Method: GET}}
  StreamFunction:
    Type: AWS::Serverless::Function
    Metadata:
      turnstop: {StreamHandler: app.stream_handler, Routes: ["GET /stream/{name}"]}
    Properties: {CodeUri: functions/stream/, Handler: run.sh, ReservedConcurrentExecutions: 1}
"""

COMMON = """
import json, os, time
from pathlib import Path

def record(**fields):
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(json.dumps(fields) + "\\n")

def wait_gate(name, seconds=20):
    gate = Path(os.environ["FAKE_LOG"]).with_name("gate-" + name)
    deadline = time.monotonic() + seconds
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.01)

class Response:
    def __init__(self, body):
        self.status_code = 200
        self.headers = {"content-type": "text/event-stream"}
        self.body = body
"""

FUNCTIONS = {
    "open": """
def handler(event, context):
    return {"statusCode": 200, "body": "open"}
""",
    "stream": """
def stream_handler(event, context):
    name = event["pathParameters"]["name"]

    def body():
        yielded = 0
        try:
            yielded += 1
            yield "data: first\\n\\n"
            wait_gate(name)
            yielded += 1
            yield "data: second\\n\\n"
            wait_gate(name + "-2")
            yielded += 1
            yield "data: third\\n\\n"
        finally:
            record(fn="stream", closed=name, yielded=yielded)

    return Response(body())
""",
}


def make_repo(root: Path) -> Path:
    log = root / "calls.jsonl"
    (root / "template.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "template.yaml").write_text(TEMPLATE.replace("__LOG__", str(log)))
    for name, code in FUNCTIONS.items():
        directory = root / "functions" / name
        directory.mkdir(parents=True)
        (directory / "app.py").write_text(dedent(COMMON) + dedent(code))
    log.touch()
    return log


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def limits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalRuntime, Path]]:
    root = tmp_path_factory.mktemp("limits-repo")
    log = make_repo(root)
    saved_path = list(sys.path)
    prefix = f"l{uuid.uuid4().hex[:8]}-"  # moto's state is per process: keep names apart
    runtime = LocalRuntime(
        root / "template.yaml", port=0, store_kind="moto", table_name=f"{prefix}table", prefix=prefix, write_state=False
    )
    with runtime:
        yield runtime, log
    sys.path[:] = saved_path


def port(runtime: LocalRuntime) -> int:
    assert runtime.server is not None
    return runtime.server.port


def request(runtime: LocalRuntime, path: str, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    connection = HTTPConnection("127.0.0.1", port(runtime), timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def open_stream(server_port: int, name: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server_port), timeout=10)
    sock.sendall(f"GET /stream/{name} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def read_until(sock: socket.socket, marker: bytes, buffer: bytearray) -> None:
    while marker not in buffer:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed before {marker!r}; got {bytes(buffer)!r}")
        buffer.extend(chunk)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


# ----------------------------------------------------------------------------- listen backlog


def test_many_simultaneous_connects_are_queued_not_refused(limits: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = limits
    assert runtime.server is not None
    # A server that listens but does not accept yet: every connection waits in the backlog.
    server = LocalHttpServer(runtime.server.api, "127.0.0.1", 0, idle_timeout=10)
    count = 100

    def connect(_: int) -> socket.socket:
        return socket.create_connection(("127.0.0.1", server.port), timeout=3)

    try:
        with ThreadPoolExecutor(max_workers=count) as pool:
            sockets = list(pool.map(connect, range(count)))  # raises if a connect timed out or was reset
        server.start_in_thread()

        def ask(sock: socket.socket) -> bytes:
            with sock:
                sock.settimeout(20)
                sock.sendall(b"GET /open HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                reply = b""
                while chunk := sock.recv(4096):
                    reply += chunk
                return reply

        with ThreadPoolExecutor(max_workers=16) as pool:
            replies = list(pool.map(ask, sockets))
    finally:
        server.stop()
    assert all(r.startswith(b"HTTP/1.1 200") and r.endswith(b"open") for r in replies)


# ------------------------------------------------------------------------- idle sockets


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes the connection within ``seconds`` (False on a client timeout)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_idle_and_stalled_connections_are_closed(limits: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = limits
    assert runtime.server is not None
    server = LocalHttpServer(runtime.server.api, "127.0.0.1", 0, idle_timeout=0.3).start_in_thread()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as silent:
            assert _closed_within(silent, 5), "a connection that never sends is closed"
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as stalled:
            stalled.sendall(b"GET /open HTTP/1.1\r\nHost: x\r\n")  # headers never end
            assert _closed_within(stalled, 5), "a request that stalls is closed"
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as kept:
            kept.sendall(b"GET /open HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = bytearray()
            read_until(kept, b"open", reply)
            assert reply.startswith(b"HTTP/1.1 200")
            assert _closed_within(kept, 5), "an idle keep-alive connection is closed"
    finally:
        server.stop()


def test_a_quiet_stream_is_not_cut_by_the_idle_timeout(limits: tuple[LocalRuntime, Path]) -> None:
    runtime, log = limits
    assert runtime.server is not None
    server = LocalHttpServer(runtime.server.api, "127.0.0.1", 0, idle_timeout=0.3).start_in_thread()
    name = unique("q")
    try:
        with open_stream(server.port, name) as sock:
            received = bytearray()
            read_until(sock, b"data: first", received)
            # Quiet for five idle timeouts: nothing arrives and the connection stays open.
            assert not _closed_within(sock, 1.5)
            sock.settimeout(10)
            log.with_name(f"gate-{name}").touch()
            log.with_name(f"gate-{name}-2").touch()
            read_until(sock, b"0\r\n\r\n", received)
        assert b"data: second" in received and b"data: third" in received
    finally:
        server.stop()
