"""What operators see of a cancel: its log line's keys (turn_id, tenant, dialect, cancel_source),
the metrics the dashboard graphs, and the traces (on in Lambda, off locally, never on a cancel's
way to its answer)."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.unit.functions_harness import DEV_KEY, Aws, Context, aws, load_event  # noqa: F401
from turnstop.observability import logkeys, tracing

KEYS = ("turn_id", "tenant", "dialect", "cancel_source")
Logs = Callable[[ModuleType], io.StringIO]


@pytest.fixture
def logs() -> Iterator[Logs]:
    """Point a loaded function's Powertools Logger at a buffer (its handler is per service)."""
    handlers: list[tuple[Any, Any]] = []

    def capture(fn: ModuleType) -> io.StringIO:
        out = io.StringIO()
        handler = fn.logger.registered_handler
        # swapped, not setStream(): that flushes the old stream, which is closed when the module
        # was first loaded under another test's capsys (its handler kept that test's stdout)
        handlers.append((handler, handler.stream))
        handler.stream = out
        return out

    yield capture
    for handler, previous in reversed(handlers):
        handler.stream = previous


def lines(out: io.StringIO, message: str) -> list[dict[str, Any]]:
    return [line for raw in out.getvalue().splitlines() if (line := json.loads(raw))["message"] == message]


def keys_of(line: dict[str, Any]) -> dict[str, Any]:
    return {k: line.get(k) for k in KEYS}


def start_stateless(aws: Aws, prompt: str) -> tuple[str, Any]:
    ev = load_event("sessions_stream")
    ev["body"] = json.dumps({"input": prompt})
    resp = aws.function("sessions_stream").stream_handler(ev)
    return resp.headers["X-Response-Id"], resp


def cancel_event(rid: str) -> dict[str, Any]:
    ev = load_event("response_cancel")
    ev["rawPath"] = f"/v1/responses/{rid}/cancel"
    ev["pathParameters"] = {"rid": rid}
    return ev


# ---------------------------------------------------------------------------- log keys


def test_a_cancels_log_line_names_its_turn_tenant_dialect_and_source(aws: Aws, logs: Logs) -> None:
    rid, stream = start_stateless(aws, "Write a 400-word note")
    fn = aws.function("response_cancel")
    out = logs(fn)
    assert fn.lambda_handler(cancel_event(rid), Context())["statusCode"] == 202
    "".join(stream.body)  # the turn ends cancelled
    (line,) = lines(out, "cancel answered")
    assert keys_of(line) == {"turn_id": rid, "tenant": "dev", "dialect": "sessions", "cancel_source": "api"}
    assert (line["status"], line["level"], line["service"]) == (202, "INFO", "unit")


def test_the_next_request_carries_none_of_the_last_ones_keys(aws: Aws, logs: Logs) -> None:
    rid, stream = start_stateless(aws, "Write a 400-word note")
    fn = aws.function("response_cancel")
    out = logs(fn)
    fn.lambda_handler(cancel_event(rid), Context())
    "".join(stream.body)
    anonymous = cancel_event("resp_unknown00000000000000000")
    anonymous["requestContext"]["authorizer"] = {"lambda": {"anonymous": "true"}}
    assert fn.lambda_handler(anonymous, Context())["statusCode"] == 401
    first, second = lines(out, "cancel answered")
    assert first["turn_id"] == rid
    assert keys_of(second) == {"turn_id": None, "tenant": None, "dialect": "sessions", "cancel_source": None}


def test_the_authorizers_tenant_key_does_not_outlive_its_invocation(aws: Aws) -> None:
    """A warm authorizer that saw a key, then a request without one, must not log the second
    under the first one's tenant."""
    fn = aws.function("authorizer")
    ev = load_event("authorizer")
    ev["headers"]["authorization"] = f"Bearer {DEV_KEY}"
    assert fn.lambda_handler(ev, Context())["context"]["tenant"] == "dev"
    assert fn.logger.get_current_keys().get("tenant") == "dev"
    ev["headers"]["authorization"] = "Bearer nope"
    assert fn.lambda_handler(ev, Context())["context"] == {"anonymous": "true"}
    assert "tenant" not in fn.logger.get_current_keys() and "key_id" not in fn.logger.get_current_keys()


def test_a_queued_cancels_log_line_says_it_came_from_the_queue(aws: Aws, logs: Logs) -> None:
    rid, stream = start_stateless(aws, "Write a 400-word note")
    fn = aws.function("cancel_consumer")
    out = logs(fn)
    event = load_event("cancel_consumer")
    event["Records"][0]["body"] = json.dumps({"turn_id": rid, "tenant": "dev"})
    assert fn.lambda_handler(event, Context()) == {"batchItemFailures": []}
    "".join(stream.body)
    (line,) = lines(out, "queued cancel settled")
    assert keys_of(line) == {"turn_id": rid, "tenant": "dev", "dialect": "sessions", "cancel_source": "queue"}
    assert line["outcome"] == "cancelling"


def test_a_bulk_cancels_log_line_names_its_tenant_and_source_and_no_single_turn(aws: Aws, logs: Logs) -> None:
    rid, stream = start_stateless(aws, "Write a 400-word note")
    fn = aws.function("admin_cancels")
    out = logs(fn)
    event = load_event("admin_cancels")
    event["body"] = json.dumps({"scope": {"tenant": "dev"}, "reason": "account suspended"})
    answer = fn.lambda_handler(event, Context())
    "".join(stream.body)
    assert (answer["statusCode"], json.loads(answer["body"])["cancelled"]) == (200, 1)
    (line,) = lines(out, "cancel answered")
    assert keys_of(line) == {"turn_id": None, "tenant": "dev", "dialect": None, "cancel_source": "admin"}


def test_the_workers_log_line_names_the_turn_it_ran(aws: Aws, logs: Logs) -> None:
    created = aws.function("tasks_api").lambda_handler(load_event("tasks_api"), Context())
    task_id = json.loads(created["body"])["task_id"]
    worker = aws.function("worker")
    out = logs(worker)
    assert worker.lambda_handler({"Records": aws.drain_queue()}, Context()) == {"batchItemFailures": []}
    (line,) = lines(out, "turn settled")
    assert keys_of(line) == {"turn_id": task_id, "tenant": "dev", "dialect": "tasks", "cancel_source": None}
    assert line["result"] == "completed"


def test_a_python_thread_a_turn_starts_carries_the_keys_of_the_one_that_started_it() -> None:
    import threading

    logkeys.reset(turn_id="resp_1", tenant="acme")
    seen: list[dict[str, Any]] = []
    thread = threading.Thread(target=logkeys.carried(lambda: seen.append(logkeys.current())))
    thread.start()
    thread.join()
    bare = threading.Thread(target=lambda: seen.append(logkeys.current()))
    bare.start()
    bare.join()
    logkeys.reset()
    assert seen == [{"turn_id": "resp_1", "tenant": "acme"}, {}]


# ---------------------------------------------------------------------------- metrics


def emf(out: str, name: str) -> list[dict[str, Any]]:
    """The EMF blobs of the printed output that carry metric ``name``."""
    found = []
    for raw in out.splitlines():
        if raw.startswith("{") and '"_aws"' in raw:
            blob = json.loads(raw)
            if any(m["Name"] == name for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]):
                found.append(blob)
    return found


def test_a_cancelled_turn_is_counted_by_dialect_and_source_with_its_latency(
    aws: Aws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("TURNSTOP_EVENTS_FILE", str(tmp_path / "events.jsonl"))
    fn = aws.function("turn_events")
    capsys.readouterr()
    assert fn.lambda_handler(load_event("turn_events"), Context()) == {"batchItemFailures": []}
    out = capsys.readouterr().out
    (cancels,) = emf(out, "Cancels")
    assert sorted(cancels["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == ["dialect", "service", "source"]
    assert (cancels["dialect"], cancels["source"], cancels["Cancels"]) == ("sessions", "api", [1.0])
    (ended,) = emf(out, "TurnsEnded")
    assert (ended["dialect"], ended["status"]) == ("sessions", "cancelled")
    by_dialect = [b for b in emf(out, "CancelLatency") if "dialect" in b]
    by_service = [b for b in emf(out, "CancelLatency") if "service" in b]
    assert [b["CancelLatency"] for b in by_dialect] == [[180.0]] and by_service and by_service[0]["service"] == "unit"


# ---------------------------------------------------------------------------- traces


def test_tracing_is_off_outside_lambda_and_leaves_the_handler_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(event: Any, context: Any) -> Any:
        return event

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    assert tracing.traced(handler) is handler and tracing.traced(handler, lazy=True) is handler
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert tracing.traced(handler) is handler and tracing.traced_wsgi(handler) is handler


EAGER = """
import json, sys
sys.path[:0] = [sys.argv[1]]
from turnstop.observability import logkeys
from turnstop.observability.tracing import traced

@traced
def lambda_handler(event, context):
    logkeys.reset(turn_id="task_1", tenant="acme", dialect="tasks")
    return {"ok": True}

print(json.dumps(lambda_handler({}, None)))
"""

LAZY = """
import json, sys
sys.path[:0] = [sys.argv[1]]
from turnstop.observability import logkeys
from turnstop.observability.tracing import traced

answers = iter([202, 503])

@traced(lazy=True)
def lambda_handler(event, context):
    logkeys.reset(turn_id="resp_1", tenant="acme", dialect="sessions", cancel_source="api")
    return {"statusCode": next(answers)}

for _ in range(2):
    lambda_handler({}, None)
    print("aws_xray_sdk" in sys.modules)
"""


def in_lambda(script: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Run ``script`` as in Lambda with Tracing: Active, against a stand-in X-Ray daemon (a UDP
    socket): what it printed, and the (sub)segments it sent."""
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(0.5)
    env = {
        "PATH": "/usr/bin:/bin",
        "LAMBDA_TASK_ROOT": "/var/task",
        "POWERTOOLS_TRACE_DISABLED": "false",
        "POWERTOOLS_SERVICE_NAME": "unit",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    }
    sent: list[dict[str, Any]] = []
    with daemon:
        out = subprocess.run(
            [sys.executable, "-c", script, str(ROOT / "layers" / "turnstop")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        try:
            while True:  # the script has exited: everything it sent is queued already
                sent.append(json.loads(daemon.recv(65536).decode().split("\n", 1)[1]))
        except TimeoutError:
            pass
    return out.stdout.split(), sent


def test_in_lambda_a_function_sends_its_handler_subsegment_annotated_with_the_log_keys() -> None:
    printed, (subsegment,) = in_lambda(EAGER)
    assert printed[-2:] == ['{"ok":', "true}"]
    assert (subsegment["name"], subsegment["trace_id"]) == ("## lambda_handler", "1-5759e988-bd862e3fe1be46a994272793")
    assert {k: subsegment["annotations"].get(k) for k in ("turn_id", "tenant", "dialect")} == {
        "turn_id": "task_1",
        "tenant": "acme",
        "dialect": "tasks",
    }


def test_in_lambda_a_cancel_function_loads_the_sdk_only_to_trace_a_failed_answer() -> None:
    printed, (subsegment,) = in_lambda(LAZY)
    assert printed == ["False", "True"]  # after the 202, after the 503
    assert subsegment["name"] == "## lambda_handler" and subsegment["fault"] is True
    assert subsegment["start_time"] <= subsegment["end_time"]
    assert subsegment["annotations"] == {
        "turn_id": "resp_1",
        "tenant": "acme",
        "dialect": "sessions",
        "cancel_source": "api",
        "status": 503,
    }


WSGI = """
import sys
sys.path[:0] = [sys.argv[1]]
from turnstop.observability import logkeys
from turnstop.observability.tracing import traced_wsgi

def app(environ, start_response):
    logkeys.reset(turn_id="msg_1", tenant="acme", dialect="sessions")
    start_response("200 OK", [])
    yield b"id: 1"

environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/responses",
           "HTTP_X_AMZN_TRACE_ID": "Root=1-6741aaaa-000000000000000000000001;Parent=1111111111111111;Sampled=1"}
print(b"".join(traced_wsgi(app)(environ, lambda status, headers: None)).decode().replace(" ", ""))
"""


def test_behind_the_web_adapter_each_request_is_traced_under_its_own_trace_header() -> None:
    printed, (subsegment,) = in_lambda(WSGI)
    assert printed == ["id:1"]  # the stream went through whole
    assert subsegment["name"] == "## POST /v1/responses"
    assert subsegment["trace_id"] == "1-6741aaaa-000000000000000000000001"  # the request's, not the process's
    assert subsegment["annotations"] == {"turn_id": "msg_1", "tenant": "acme", "dialect": "sessions"}


RECORDS = """
import inspect, json, sys
sys.path[:0] = [sys.argv[1]]
from turnstop.observability import logkeys
from turnstop.observability.tracing import traced, traced_record

@traced_record
def record_handler(record, lambda_context):
    logkeys.reset(turn_id=record, tenant="acme", cancel_source="queue")
    return record

@traced
def lambda_handler(event, context):
    return [record_handler(record=r, lambda_context=context) for r in event]

print(json.dumps(lambda_handler(["resp_1", "resp_2"], None)))
print("lambda_context" in inspect.signature(record_handler).parameters)  # Powertools' batch looks for it
"""


def test_in_lambda_each_record_of_a_batch_is_a_subsegment_with_its_own_keys() -> None:
    printed, sent = in_lambda(RECORDS)
    assert printed[-1] == "True"
    records = [s for s in sent if s["name"] == "## record_handler"]
    assert [r["annotations"]["turn_id"] for r in records] == ["resp_1", "resp_2"]
    assert all(r["annotations"]["cancel_source"] == "queue" for r in records)
    assert [s["name"] for s in sent if s not in records] == ["## lambda_handler"]


CALLS = """
import http.client, http.server, sys, threading
sys.path[:0] = [sys.argv[1]]
import boto3
from turnstop.observability.tracing import traced

class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass

receiver = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=receiver.serve_forever, daemon=True).start()
store = http.server.HTTPServer(("127.0.0.1", 0), Receiver)  # stands in for DynamoDB: answers 204
threading.Thread(target=store.serve_forever, daemon=True).start()

@traced
def lambda_handler(event, context):
    ddb = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{store.server_port}", region_name="us-east-1",
                       aws_access_key_id="x", aws_secret_access_key="x")
    try:
        ddb.describe_limits()
    except Exception:
        pass
    callback = http.client.HTTPConnection("127.0.0.1", receiver.server_port)
    callback.request("POST", "/hooks/task", body=b"{}")
    return callback.getresponse().status

print(lambda_handler({}, None))
"""


def test_in_lambda_aws_calls_and_callbacks_are_traced_and_an_aws_call_only_once() -> None:
    printed, sent = in_lambda(CALLS)
    assert printed[-1] == "204"
    assert {s["name"] for s in sent} == {"## lambda_handler", "dynamodb", "127.0.0.1"}
    (aws_call,) = [s for s in sent if s["name"] == "dynamodb"]
    assert aws_call["namespace"] == "aws"
    # http.client's subsegments are the callback's only: botocore's connection is not recorded twice
    assert {s["http"]["request"]["url"] for s in sent if s["name"] == "127.0.0.1"} == {"http://127.0.0.1/hooks/task"}
