"""The local runtime under load: listen backlog, per-function concurrency and throttling (with a
its dialect's answer, from the resolver the local runtime wraps), idle-socket timeouts, and clients that leave early.

A tiny fake repo (its own template.yaml and functions) served over loopback, moto as the store.
Functions block on gate files the tests create; waits poll a condition with a deadline.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path
from textwrap import dedent
from typing import Any

import boto3
import pytest

from tests.conftest import ROOT
from turnstop_local.concurrency import DEFAULT_CONCURRENCY, ConcurrencyLimit, Throttled, unreserved_concurrency
from turnstop_local.http_server import LocalHttpServer
from turnstop_local.lambda_host import LambdaFunction
from turnstop_local.runtime import LocalRuntime
from turnstop_local.template import Template

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 30
    Environment: {Variables: {FAKE_LOG: __LOG__}}
Resources:
  SerialDLQ:
    Type: AWS::SQS::Queue
  SerialQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 30
      RedrivePolicy: {deadLetterTargetArn: !GetAtt SerialDLQ.Arn, maxReceiveCount: 1}
  OpenFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/open/
      Handler: app.handler
      Events:
        Open: {Type: HttpApi, Properties: {Path: /open, Method: GET}}
  HoldFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/hold/
      Handler: app.handler
      ReservedConcurrentExecutions: 1
      Events:
        Hold: {Type: HttpApi, Properties: {Path: "/hold/{name}", Method: GET}}
  ShapedFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/shaped/
      Handler: app.handler
      ReservedConcurrentExecutions: 0
      Events:
        Shaped: {Type: HttpApi, Properties: {Path: /shaped, Method: GET}}
  BadHookFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/badhook/
      Handler: app.handler
      ReservedConcurrentExecutions: 0
      Events:
        Bad: {Type: HttpApi, Properties: {Path: /badhook, Method: GET}}
  StreamFunction:
    Type: AWS::Serverless::Function
    Metadata:
      turnstop: {StreamHandler: app.stream_handler, Routes: ["GET /stream/{name}"]}
    Properties: {CodeUri: functions/stream/, Handler: run.sh, ReservedConcurrentExecutions: 1}
  ShapedStreamFunction:
    Type: AWS::Serverless::Function
    Metadata:
      turnstop: {StreamHandler: app.stream_handler, Routes: ["GET /shaped-stream"]}
    Properties: {CodeUri: functions/shaped_stream/, Handler: run.sh, ReservedConcurrentExecutions: 0}
  SerialFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/serial/
      Handler: app.handler
      ReservedConcurrentExecutions: 3
      Events:
        Work:
          Type: SQS
          Properties: {Queue: !GetAtt SerialQueue.Arn, BatchSize: 1, ScalingConfig: {MaximumConcurrency: 1}}
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
    def __init__(self, body, status_code=200, headers=None):
        self.status_code = status_code
        self.headers = headers or {"content-type": "text/event-stream"}
        self.body = body
"""

FUNCTIONS = {
    "open": """
def handler(event, context):
    return {"statusCode": 200, "body": "open"}
""",
    "hold": """
def handler(event, context):
    name = event["pathParameters"]["name"]
    record(fn="hold", started=name)
    wait_gate(name)
    record(fn="hold", ended=name)
    return {"statusCode": 200, "body": name}
""",
    "shaped": """
def handler(event, context):
    return {"statusCode": 200, "body": "ran"}

class App:  # a resolver's error answer, as the local runtime wraps it
    request_headers = None

    def error_response(self, exc, event):
        body = {"error": {"type": "rate_limit_error", "route": event["routeKey"]}}
        return Response(body=json.dumps(body), status_code=429,
                        headers={"content-type": "application/json", "retry-after": "1"})

app = App()
""",
    "badhook": """
def handler(event, context):
    return {"statusCode": 200, "body": "ran"}

class App:
    def error_response(self, exc, event):
        raise RuntimeError("the resolver itself fails")

app = App()
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
    "shaped_stream": """
def stream_handler(event, context):
    return Response(iter(["data: never\\n\\n"]))

class App:
    def request_headers(self, event):
        return {"x-dialect": "shaped"}

    def error_response(self, exc, event):
        body = json.dumps({"error": "busy", "route": event["routeKey"]})
        return Response(body=body, status_code=429, headers={"content-type": "application/json"})

app = App()
""",
    "serial": """
def handler(event, context):
    started = time.monotonic()
    time.sleep(0.1)
    for r in event["Records"]:
        record(fn="serial", body=r["body"], start=started, end=time.monotonic())
    return {}
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


# -------------------------------------------------------------------------------- concurrency


def test_concurrency_limit_counts_and_bounds_its_waits() -> None:
    limit = ConcurrencyLimit(2)
    assert limit.acquire() and limit.acquire()
    started = time.monotonic()
    assert not limit.acquire(timeout=0.05)
    assert time.monotonic() - started < 2
    assert limit.in_use == 2
    limit.release()
    assert limit.acquire(timeout=0)
    assert not ConcurrencyLimit(0).acquire(timeout=0)
    assert unreserved_concurrency({}) == DEFAULT_CONCURRENCY == 64
    assert unreserved_concurrency({"TURNSTOP_LOCAL_CONCURRENCY": "5"}) == 5
    assert unreserved_concurrency({"TURNSTOP_LOCAL_CONCURRENCY": "many"}) == 64
    assert unreserved_concurrency({"TURNSTOP_LOCAL_CONCURRENCY": "0"}) == 1


def test_limits_come_from_the_template() -> None:
    # ReservedConcurrentExecutions comes from the ReservedConcurrency parameter (default 0: none)
    template = Template.load(ROOT / "template.yaml", {"ReservedConcurrency": "20"})
    unreserved = Template.load(ROOT / "template.yaml")

    def limit(function_id: str, environ: dict[str, str], of: Template = template) -> int:
        function = LambdaFunction(of.function(function_id), {}, [], "us-east-1", "1", environ)
        function.shutdown()
        return function.concurrency

    assert limit("SessionCancelFunction", {}) == 20  # ReservedConcurrentExecutions
    assert limit("SessionCancelFunction", {}, unreserved) == 64  # no reservation asked for
    assert limit("SessionsStreamFunction", {}) == 64  # unreserved: the default
    assert limit("SessionsStreamFunction", {"TURNSTOP_LOCAL_CONCURRENCY": "8"}) == 8
    assert limit("SessionCancelFunction", {"TURNSTOP_LOCAL_CONCURRENCY": "8"}) == 20
    consumer = next(s for s in template.sqs_event_sources if s.function_id == "CancelConsumerFunction")
    assert consumer.maximum_concurrency == 10  # ScalingConfig.MaximumConcurrency


def test_a_function_at_its_limit_answers_at_once(limits: tuple[LocalRuntime, Path]) -> None:
    runtime, log = limits
    first, second = unique("a"), unique("b")
    answer: dict[str, Any] = {}
    holder = threading.Thread(target=lambda: answer.update(result=request(runtime, f"/hold/{first}", timeout=30)))
    holder.start()
    try:
        wait_for(lambda: any(c.get("started") == first for c in calls(log)), what="the first request running")
        started = time.monotonic()
        status, headers, body = request(runtime, f"/hold/{second}", timeout=5)
        # API Gateway answers a refused (throttled) Lambda invocation with a 500, without waiting.
        assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
        assert time.monotonic() - started < 2
        assert not any(c.get("started") == second for c in calls(log))  # the handler never ran
    finally:
        log.with_name(f"gate-{first}").touch()
        holder.join(30)
    assert answer["result"][0] == 200
    function = runtime.host.get("HoldFunction")  # type: ignore[union-attr]
    wait_for(lambda: function.slots.in_use == 0, what="the slot released")
    log.with_name(f"gate-{second}").touch()
    assert request(runtime, f"/hold/{second}")[0] == 200  # a free slot serves again


def test_a_stream_at_its_limit_gets_the_function_url_throttle(limits: tuple[LocalRuntime, Path]) -> None:
    runtime, log = limits
    name = unique("t")
    with open_stream(port(runtime), name) as sock:
        read_until(sock, b"data: first", bytearray())
        started = time.monotonic()
        status, headers, body = request(runtime, f"/stream/{unique('u')}", timeout=5)
        assert time.monotonic() - started < 2
        log.with_name(f"gate-{name}").touch()
        log.with_name(f"gate-{name}-2").touch()
        read_until(sock, b"0\r\n\r\n", bytearray())
    assert status == 429
    assert headers["x-amzn-errortype"] == "TooManyRequestsException"
    assert json.loads(body) == {
        "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
        "Type": "User",
        "message": "Rate Exceeded.",
    }


def test_a_throttled_request_gets_its_dialects_answer(limits: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = limits
    status, headers, body = request(runtime, "/shaped")
    assert status == 429 and headers["retry-after"] == "1"
    assert json.loads(body) == {"error": {"type": "rate_limit_error", "route": "GET /shaped"}}
    status, headers, body = request(runtime, "/shaped-stream")
    assert (status, json.loads(body)) == (429, {"error": "busy", "route": "GET /shaped-stream"})
    assert headers["x-dialect"] == "shaped" and headers["x-request-id"]  # the resolver's own headers, and the id
    # A resolver that fails is logged; the request gets what AWS would answer.
    status, _, body = request(runtime, "/badhook")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})


def test_throttled_is_raised_to_direct_callers(limits: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = limits
    with pytest.raises(Throttled) as raised:
        runtime.host.get("ShapedFunction").invoke({})  # type: ignore[union-attr]
    assert raised.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_sqs_mapping_stays_within_its_limits(limits: tuple[LocalRuntime, Path]) -> None:
    runtime, log = limits
    assert runtime.resources is not None
    sqs = boto3.client("sqs", endpoint_url=runtime.store.sqs_endpoint, region_name="us-east-1")
    queues = runtime.resources.queues
    tag = uuid.uuid4().hex[:6]
    bodies = [f"{tag}-{i}" for i in range(4)]
    for body in bodies:
        sqs.send_message(QueueUrl=queues["SerialQueue"].url, MessageBody=body)

    def runs() -> list[dict[str, Any]]:
        return [c for c in calls(log) if c.get("fn") == "serial" and c["body"].startswith(tag)]

    wait_for(lambda: len(runs()) >= len(bodies), what="every message processed")
    done = sorted(runs(), key=lambda c: c["start"])
    assert sorted(c["body"] for c in done) == bodies  # each exactly once
    for earlier, later in zip(done, done[1:], strict=False):
        assert later["start"] >= earlier["end"]  # MaximumConcurrency 1: never two at a time
    dlq = sqs.receive_message(QueueUrl=queues["SerialDLQ"].url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    assert not dlq.get("Messages")


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


# ------------------------------------------------------------------------ early disconnects


def test_a_stream_whose_client_leaves_is_closed_at_its_next_chunk(limits: tuple[LocalRuntime, Path]) -> None:
    runtime, log = limits
    assert runtime.server is not None
    function = runtime.host.get("StreamFunction")  # type: ignore[union-attr]
    name = unique("d")
    gone = runtime.server.clients_gone
    with open_stream(port(runtime), name) as sock:
        read_until(sock, b"data: first", bytearray())
        assert function.slots.in_use == 1
    # The body is quiet (waiting for its gate), yet the server notices the client left ...
    wait_for(lambda: runtime.server.clients_gone > gone, timeout=10, what="the server noticing")  # type: ignore[union-attr]
    assert function.slots.in_use == 1  # ... while the handler still holds its slot
    log.with_name(f"gate-{name}").touch()
    # ... so the body is closed when it next yields, not after another write (it would then
    # block on its second gate), and the function's slot is free again.
    closed = wait_for(lambda: [c for c in calls(log) if c.get("closed") == name], timeout=10, what="body closed")
    assert closed[0]["yielded"] == 2
    wait_for(lambda: function.slots.in_use == 0, timeout=10, what="the slot released")
    other = unique("e")
    with open_stream(port(runtime), other) as sock:
        head = bytearray()
        read_until(sock, b"data: first", head)
        assert head.startswith(b"HTTP/1.1 200")
        log.with_name(f"gate-{other}").touch()
        log.with_name(f"gate-{other}-2").touch()
        read_until(sock, b"0\r\n\r\n", head)


def test_a_buffered_request_whose_client_leaves_frees_its_slot_when_it_ends(
    limits: tuple[LocalRuntime, Path],
) -> None:
    runtime, log = limits
    assert runtime.server is not None
    function = runtime.host.get("HoldFunction")  # type: ignore[union-attr]
    name = unique("h")
    gone = runtime.server.clients_gone
    with socket.create_connection(("127.0.0.1", port(runtime)), timeout=5) as sock:
        sock.sendall(f"GET /hold/{name} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        wait_for(lambda: any(c.get("started") == name for c in calls(log)), what="the handler running")
    wait_for(lambda: runtime.server.clients_gone > gone, timeout=10, what="the server noticing")  # type: ignore[union-attr]
    assert function.slots.in_use == 1  # the invocation runs on, as Lambda's would
    log.with_name(f"gate-{name}").touch()
    wait_for(lambda: function.slots.in_use == 0, timeout=10, what="the slot released")
    assert any(c.get("ended") == name for c in calls(log))


def test_a_client_reset_is_not_reported_as_a_server_error(
    limits: tuple[LocalRuntime, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    runtime, _ = limits
    assert runtime.server is not None
    server = LocalHttpServer(runtime.server.api, "127.0.0.1", 0, idle_timeout=10).start_in_thread()
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"GET /open HTTP/1.1\r\nHost: x\r\n\r\n")
        read_until(sock, b"open", bytearray())
        # Close with a reset (SO_LINGER 0) while the server waits for the next request on it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        wait_for(lambda: request_on(server.port, "/open") == 200, what="the server still serving")
    finally:
        server.stop()
    assert "Traceback" not in capsys.readouterr().err


def request_on(server_port: int, path: str) -> int:
    connection = HTTPConnection("127.0.0.1", server_port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_no_function_carries_code_for_the_local_runtimes_throttling() -> None:
    """The dialect's answer to a throttled request is the local runtime's business (it wraps the
    resolver): production functions export nothing for it."""
    named = {p.parent.name for p in (ROOT / "functions").glob("*/app.py") if "throttled_response" in p.read_text()}
    assert named == set()
