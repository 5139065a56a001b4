"""The local runtime end to end on a tiny fake repo (its own template.yaml and functions), over
loopback HTTP, with moto's server as the store: authorizer, handler errors, streaming, SQS
event-source-mapping semantics (partial failures, redelivery, DLQ) and the CLI.

Nothing here depends on the real layer or functions; waits poll a condition with a deadline.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.client import HTTPConnection
from pathlib import Path
from textwrap import dedent
from typing import Any

import boto3
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import pump_lines
from turnstop_local.runtime import LocalRuntime

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Greeting: {Type: String, Default: hello}
Globals:
  Function:
    Timeout: 5
    Layers: [!Ref FakeLayer]
    Environment:
      Variables:
        TURNSTOP_TABLE: !Ref Table
        FAKE_LOG: __LOG__
        GREETING: !Ref Greeting
Resources:
  FakeLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layer/}
    Metadata: {BuildMethod: python3.11}
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      TimeToLiveSpecification: {AttributeName: ttl, Enabled: true}
  DLQ:
    Type: AWS::SQS::Queue
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      # long enough that a batch processed on a loaded machine is deleted before it reappears
      VisibilityTimeout: 8
      RedrivePolicy: {deadLetterTargetArn: !GetAtt DLQ.Arn, maxReceiveCount: 2}
  RetryDLQ:
    Type: AWS::SQS::Queue
  RetryQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
      RedrivePolicy: {deadLetterTargetArn: !GetAtt RetryDLQ.Arn, maxReceiveCount: 3}
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Gate
        Authorizers:
          Gate:
            FunctionArn: !GetAtt GateFunction.Arn
            AuthorizerPayloadFormatVersion: "2.0"
            EnableSimpleResponses: true
  GateFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: functions/gate/, Handler: app.handler}
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/echo/
      Handler: app.handler
      Environment: {Variables: {WHO: echo}}
      Events:
        Echo:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: "/echo/{id}", Method: ANY}
        Open:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: /open, Method: GET, Auth: {Authorizer: NONE}}
        Boom:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: /boom, Method: GET, Auth: {Authorizer: NONE}}
  StreamFunction:
    Type: AWS::Serverless::Function
    Metadata:
      turnstop:
        StreamHandler: app.stream_handler
        Routes: ["GET /stream/{name}"]
    Properties: {CodeUri: functions/stream/, Handler: run.sh}
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/worker/
      Handler: app.handler
      Events:
        Work:
          Type: SQS
          Properties: {Queue: !GetAtt WorkQueue.Arn, BatchSize: 10, FunctionResponseTypes: [ReportBatchItemFailures]}
  RetryFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/retry/
      Handler: app.handler
      Events:
        Retry:
          Type: SQS
          Properties: {Queue: !GetAtt RetryQueue.Arn, BatchSize: 1}
"""

# Every function appends what it saw to FAKE_LOG (JSON lines) so tests can observe invocations.
COMMON = """
import json, os
import fakelib_local_runtime

GREETING = os.environ["GREETING"]  # read at import: the template environment applies then

def record(**fields):
    with open(os.environ.get("FAKE_LOG", "{log}"), "a") as f:
        f.write(json.dumps(fields) + "\\n")
"""

FUNCTIONS = {
    "gate": """
def handler(event, context):
    key = event["headers"].get("authorization", "")
    if key == "Bearer explode":
        raise RuntimeError("authorizer failure")
    return {"isAuthorized": key == "Bearer good", "context": {"tenant": "t1", "who": WHO}}

WHO = fakelib_local_runtime.NAME
""",
    "echo": """
WHO = os.environ["WHO"]  # this function's own variable, applied while its module is imported

def handler(event, context):
    if event["rawPath"] == "/boom":
        raise ValueError("boom")
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-who": WHO, "x-who-now": os.environ.get("WHO", "")},
        "cookies": ["seen=1"],
        "body": json.dumps({"event": event, "greeting": GREETING, "request_id": context.aws_request_id}),
    }
""",
    "stream": """
import time
from pathlib import Path

class Response:
    def __init__(self, body):
        self.status_code = 200
        self.headers = {"content-type": "text/event-stream", "cache-control": "no-cache"}
        self.body = body

def stream_handler(event, context):
    name = event["pathParameters"]["name"]
    gate = Path(os.environ["FAKE_LOG"]).with_name("gate-" + name)

    def body():
        try:
            yield "data: first\\n\\n"
            deadline = time.monotonic() + 20
            while not gate.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            if name == "endless":
                n = 0
                while True:
                    n += 1
                    yield f"data: {n}\\n\\n"
                    time.sleep(0.01)
            yield b"data: second\\n\\n"
        finally:
            record(fn="stream", closed=name)

    return Response(body())
""",
    "worker": """
def handler(event, context):
    failures = []
    for r in event["Records"]:
        record(fn="worker", body=r["body"], count=r["attributes"]["ApproximateReceiveCount"], record=r)
        if r["body"].startswith("fail"):
            failures.append({"itemIdentifier": r["messageId"]})
    return {"batchItemFailures": failures}
""",
    "retry": """
def handler(event, context):
    (r,) = event["Records"]
    record(fn="retry", body=r["body"], count=r["attributes"]["ApproximateReceiveCount"])
    if r["attributes"]["ApproximateReceiveCount"] == "1":
        raise RuntimeError("first attempt fails")
""",
}

# Stand-in for the layer's turnstop.auth, used only by the CLI test's fake repo.
FAKE_AUTH = """
import boto3

def create_api_key(table_name, tenant, account_ids, key=None, name=""):
    key = key or "generated-key"
    boto3.client("dynamodb").put_item(
        TableName=table_name,
        Item={"pk": {"S": "KEY#" + key}, "tenant": {"S": tenant}, "accounts": {"S": ",".join(map(str, account_ids))}},
    )
    return key
"""


def make_repo(root: Path, with_auth_shim: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    log = root / "calls.jsonl"
    (root / "template.yaml").write_text(TEMPLATE.replace("__LOG__", str(log)))
    layer = root / "layer" / "fakelib_local_runtime"
    layer.mkdir(parents=True)
    (layer / "__init__.py").write_text('NAME = "fakelib"\n')
    if with_auth_shim:
        (root / "layer" / "turnstop").mkdir()
        (root / "layer" / "turnstop" / "__init__.py").write_text("")
        (root / "layer" / "turnstop" / "auth.py").write_text(FAKE_AUTH)
    for name, code in FUNCTIONS.items():
        directory = root / "functions" / name
        directory.mkdir(parents=True)
        (directory / "app.py").write_text(COMMON.replace("{log}", str(log)) + dedent(code))
    return log


def calls(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalRuntime, Path]]:
    root = tmp_path_factory.mktemp("fake-repo")
    log = make_repo(root)
    saved_path = list(sys.path)
    prefix = f"t{uuid.uuid4().hex[:8]}-"  # moto's state is per process: keep names apart
    runtime = LocalRuntime(
        root / "template.yaml", port=0, store_kind="moto", table_name=f"{prefix}table", prefix=prefix, write_state=False
    )
    with runtime:
        yield runtime, log
    sys.path[:] = saved_path


def request(runtime: LocalRuntime, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    connection = HTTPConnection("127.0.0.1", runtime.server.port, timeout=20)  # type: ignore[union-attr]
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read(), response.headers
    finally:
        connection.close()


# ------------------------------------------------------------------------------------- HTTP


def test_authorized_request_reaches_the_handler(live: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = live
    status, headers, body, raw = request(
        runtime,
        "POST",
        "/echo/abc?x=1&x=2",
        body=b'{"a": 1}',
        headers={"Authorization": "Bearer good", "Content-Type": "application/json", "Cookie": "c1=v1; c2=v2"},
    )
    assert status == 200, body
    payload = json.loads(body)
    event = payload["event"]
    assert event["routeKey"] == "ANY /echo/{id}"
    assert event["pathParameters"] == {"id": "abc"}
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["body"] == '{"a": 1}'
    # The authorizer's context is handed on, and each function got its own environment.
    assert event["requestContext"]["authorizer"] == {"lambda": {"tenant": "t1", "who": "fakelib"}}
    assert headers["x-who"] == "echo"
    assert headers["x-who-now"] == ""  # per-function values do not leak into the shared process environment
    assert payload["greeting"] == "hello"
    assert headers["apigw-requestid"] == event["requestContext"]["requestId"]
    assert raw.get_all("set-cookie") == ["seen=1"]


def test_authorizer_false_is_403(live: tuple[LocalRuntime, Path]) -> None:
    runtime, log = live
    before = len([c for c in calls(log) if c["fn"] == "echo"])
    status, _, body, _ = request(runtime, "GET", "/echo/abc", headers={"Authorization": "Bearer bad"})
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    assert len([c for c in calls(log) if c["fn"] == "echo"]) == before  # the handler never ran


def test_authorizer_exception_is_500(live: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = live
    status, _, body, _ = request(runtime, "GET", "/echo/abc", headers={"Authorization": "Bearer explode"})
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})


def test_route_without_authorizer_and_not_found(live: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = live
    status, _, body, _ = request(runtime, "GET", "/open")
    assert status == 200 and "authorizer" not in json.loads(body)["event"]["requestContext"]
    status, headers, body, _ = request(runtime, "GET", "/nowhere")
    assert (status, body, headers["content-type"]) == (404, b'{"message":"Not Found"}', "application/json")
    assert request(runtime, "PUT", "/open")[0] == 404  # no route for that method


def test_handler_exception_is_500(live: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = live
    status, _, body, _ = request(runtime, "GET", "/boom")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})


def test_request_body_limit_is_413(live: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = live
    with socket.create_connection(("127.0.0.1", runtime.server.port), timeout=10) as sock:  # type: ignore[union-attr]
        sock.sendall(b"POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 10485761\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):  # the server answers without reading the body, then closes
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413")
    assert reply.endswith(b'{"message":"Request Entity Too Large"}')


def test_binary_body_reaches_handler_base64(live: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = live
    _, _, body, _ = request(
        runtime,
        "POST",
        "/echo/b",
        body=b"\x00\xff",
        headers={"Authorization": "Bearer good", "Content-Type": "image/png"},
    )
    event = json.loads(body)["event"]
    assert event["isBase64Encoded"] is True and event["body"] == "AP8="


# --------------------------------------------------------------------------------- streaming


def _open_stream(runtime: LocalRuntime, name: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", runtime.server.port), timeout=10)  # type: ignore[union-attr]
    sock.sendall(f"GET /stream/{name} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def _read_until(sock: socket.socket, marker: bytes, buffer: bytearray) -> None:
    while marker not in buffer:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed before {marker!r}; got {bytes(buffer)!r}")
        buffer.extend(chunk)


def test_stream_chunks_arrive_before_the_handler_finishes(live: tuple[LocalRuntime, Path]) -> None:
    runtime, log = live
    name = f"s{uuid.uuid4().hex[:6]}"
    with _open_stream(runtime, name) as sock:
        received = bytearray()
        _read_until(sock, b"data: first", received)
        # The generator is still blocked on its gate: what we have was flushed incrementally.
        head = bytes(received)
        assert head.startswith(b"HTTP/1.1 200")
        assert b"Transfer-Encoding: chunked" in head and b"content-type: text/event-stream" in head
        assert b"second" not in received
        assert not [c for c in calls(log) if c.get("closed") == name]
        log.with_name(f"gate-{name}").touch()
        _read_until(sock, b"0\r\n\r\n", received)
    assert b"data: second" in received
    wait_for(lambda: [c for c in calls(log) if c.get("closed") == name], what="stream body closed")


def test_stream_client_disconnect_closes_the_body(live: tuple[LocalRuntime, Path]) -> None:
    runtime, log = live
    with _open_stream(runtime, "endless") as sock:
        _read_until(sock, b"data: first", bytearray())
    log.with_name("gate-endless").touch()  # the generator now yields forever until closed
    wait_for(lambda: [c for c in calls(log) if c.get("closed") == "endless"], what="body.close() after disconnect")


# --------------------------------------------------------------------------------------- SQS


def _sqs(runtime: LocalRuntime) -> Any:
    return boto3.client("sqs", endpoint_url=runtime.store.sqs_endpoint, region_name="us-east-1")


def test_partial_batch_failure_redelivery_then_dlq(live: tuple[LocalRuntime, Path]) -> None:
    runtime, log = live
    sqs = _sqs(runtime)
    queues = runtime.resources.queues  # type: ignore[union-attr]
    tag = uuid.uuid4().hex[:6]

    def seen(body: str) -> list[dict[str, Any]]:
        return [c for c in calls(log) if c["fn"] == "worker" and c["body"] == body]

    # Warm the worker first: a cold start slower than the queue's visibility timeout would
    # (rightly) bring back even the items that succeeded, which is not what this test is about.
    sqs.send_message(QueueUrl=queues["WorkQueue"].url, MessageBody=f"ok-{tag}-warm")
    wait_for(lambda: seen(f"ok-{tag}-warm"), what="the warm-up message")
    sqs.send_message_batch(
        QueueUrl=queues["WorkQueue"].url,
        Entries=[
            {
                "Id": str(i),
                "MessageBody": body,
                "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "test"}},
            }
            for i, body in enumerate((f"ok-{tag}-1", f"fail-{tag}", f"ok-{tag}-2"))
        ],
    )

    # The failed item reappears after the visibility timeout (receive counts 1 then 2) ...
    wait_for(lambda: [c["count"] for c in seen(f"fail-{tag}")] == ["1", "2"], what="redelivery of the failed item")

    # ... then SQS moves it to the DLQ once it was received maxReceiveCount (2) times.
    def in_dlq() -> list[dict[str, Any]]:
        got = sqs.receive_message(QueueUrl=queues["DLQ"].url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [m for m in got.get("Messages", []) if m["Body"] == f"fail-{tag}"]

    wait_for(in_dlq, what="the failed message in the DLQ")
    # Succeeded items were deleted after their first delivery and never came back.
    assert [c["count"] for c in seen(f"ok-{tag}-1")] == ["1"]
    assert [c["count"] for c in seen(f"ok-{tag}-2")] == ["1"]
    assert len(seen(f"fail-{tag}")) == 2
    record = seen(f"ok-{tag}-1")[0]["record"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queues["WorkQueue"].arn
    assert record["awsRegion"] == "us-east-1"
    assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
        record["attributes"]
    )
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "test",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert {"messageId", "receiptHandle", "body", "md5OfBody"} <= set(record)


def test_handler_exception_redelivers_the_batch(live: tuple[LocalRuntime, Path]) -> None:
    runtime, log = live
    sqs = _sqs(runtime)
    queues = runtime.resources.queues  # type: ignore[union-attr]
    body = f"retry-{uuid.uuid4().hex[:6]}"
    sqs.send_message(QueueUrl=queues["RetryQueue"].url, MessageBody=body)
    wait_for(
        lambda: [c["count"] for c in calls(log) if c["fn"] == "retry" and c["body"] == body] == ["1", "2"],
        what="a retry after the handler raised",
    )

    def drained() -> bool:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queues["RetryQueue"].url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}

    wait_for(drained, what="the message deleted after the successful retry")


# --------------------------------------------------------------------------------------- CLI


def run_cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m turnstop_local <args>``, as a user runs it; it must succeed within a minute."""
    command = [sys.executable, "-m", "turnstop_local", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=True)


def _cli_env(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        TURNSTOP_STATE_DIR=str(state_dir),
        TURNSTOP_STORE="moto",
        TURNSTOP_DEV_API_KEY="ts_dev_fixed",
        TURNSTOP_DEV_ACCOUNT_IDS="1,2",
    )
    return env


def test_cli_serve_keys_and_invoke(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo", with_auth_shim=True)
    template = tmp_path / "repo" / "template.yaml"
    state_dir = tmp_path / "state"
    env = _cli_env(state_dir)
    server = subprocess.Popen(
        [sys.executable, "-m", "turnstop_local", "--port", "0", "--template", str(template)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=pump_lines, args=(server.stdout, lines), daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline and server.poll() is None:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line.startswith("turnstop local API ready on "):
                url = line.rsplit(" ", 1)[1].strip()
        assert url is not None, server.stderr.read() if server.stderr and server.poll() is not None else "no ready line"
        state = json.loads((state_dir / "local.json").read_text())
        assert state["url"] == url and state["store"] == "moto"
        # it names the dev key for local clients (the turnstop command line), so only its owner may read it
        assert state["dev_api_key"] == "ts_dev_fixed"
        assert (state_dir / "local.json").stat().st_mode & 0o077 == 0

        # The dev key was seeded through (the stand-in for) turnstop.auth.create_api_key.
        dynamodb = boto3.client("dynamodb", endpoint_url=state["dynamodb_endpoint"], region_name="us-east-1")
        item = dynamodb.get_item(TableName=state["table_name"], Key={"pk": {"S": "KEY#ts_dev_fixed"}})["Item"]
        assert item["tenant"] == {"S": "dev"} and item["accounts"] == {"S": "1,2"}

        created = run_cli(
            tmp_path,
            env,
            "keys",
            "create",
            "--template",
            str(template),
            "--tenant",
            "acme",
            "--accounts",
            "7",
            "--key",
            "k-acme",
        )
        assert created.stdout.strip() == "k-acme"
        assert "Item" in dynamodb.get_item(TableName=state["table_name"], Key={"pk": {"S": "KEY#k-acme"}})

        event_file = tmp_path / "event.json"
        event_file.write_text(json.dumps({"headers": {"authorization": "Bearer good"}}))
        invoked = run_cli(tmp_path, env, "invoke", "GateFunction", "-e", str(event_file), "--template", str(template))
        assert json.loads(invoked.stdout) == {"isAuthorized": True, "context": {"tenant": "t1", "who": "fakelib"}}
        assert "using the running local instance" in invoked.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert server.returncode == 0
    assert not (state_dir / "local.json").exists()


def test_cli_invoke_streaming_function_without_a_running_instance(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    (tmp_path / "repo" / "gate-cli").touch()  # let the stream run to its end at once
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps({"pathParameters": {"name": "cli"}}))
    invoked = run_cli(
        tmp_path,
        _cli_env(tmp_path / "state"),
        "invoke",
        "StreamFunction",
        "-e",
        str(event_file),
        "--template",
        str(tmp_path / "repo" / "template.yaml"),
    )
    assert invoked.stdout == "data: first\n\ndata: second\n\n"
    assert "started an embedded moto store" in invoked.stderr
