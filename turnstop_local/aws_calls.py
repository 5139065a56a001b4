"""Record which AWS API calls each function makes, as the IAM actions they need (a test tool).

The local runtime does not enforce IAM, so a function whose template policy lacks an action it
uses works here and answers 500 in AWS. With ``TURNSTOP_AWS_CALLS_FILE`` set, the runtime
installs a botocore ``before-parameter-build`` hook on the boto3 default session (so on every
client created afterwards: the functions create theirs at first use) that turns each call into
the IAM actions and resources it is authorized against, attributes it to the function whose
handler is running, and appends each new ``{"function", "action", "resource"}`` to the file as a
JSON line. The e2e tier turns it on and ``tests/e2e/test_iam_coverage_e2e.py`` compares the
record with each function's policy (:mod:`turnstop_local.iam`).

Attribution: a handler runs on its function's pool thread (``fn-<LogicalId>_<n>``, see
:mod:`turnstop_local.lambda_host`); a thread started from one (a turn's runner, a bulk cancel's
pool) is attributed to the same function. Calls on other threads (the runtime's own pollers and
set-up) are the runtime's, not a function's, and are not recorded; nor are calls the runtime's own
code makes on a function's thread (an SQS event-source mapping deleting the messages its
invocation handled: in AWS the Lambda service makes those, with the permissions SAM adds for the
event source).

Resources are named by logical id, the way the template's policies name them:
``table/TurnTable``, ``table/TurnTable/index/gsi4``, ``queue/TurnQueue``, ``event-bus/<name>``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from turnstop_local.template import LocalResources

__all__ = ["CALLS_FILE", "Recorder", "current_function", "install", "required_actions"]

CALLS_FILE = "TURNSTOP_AWS_CALLS_FILE"

_POOL_PREFIX = "fn-"
_ATTRIBUTE = "_turnstop_function"

# An item of a transaction is authorized as the single-item action it performs.
_TRANSACT_WRITE = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_TABLE_ONLY = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "DescribeTable"}
_MAYBE_INDEX = {"Query", "Scan"}


def current_function() -> str | None:
    """The logical id of the function whose code runs on this thread, if any."""
    thread = threading.current_thread()
    if thread.name.startswith(_POOL_PREFIX):
        return thread.name[len(_POOL_PREFIX) :].rsplit("_", 1)[0]
    value = getattr(thread, _ATTRIBUTE, None)
    return value if isinstance(value, str) else None


def _called_by_runtime() -> bool:
    """Whether the code that made the API call (the first frame outside boto3 and botocore) is
    the local runtime's own rather than a function's or the layer's."""
    frame = sys._getframe(1)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if not name.startswith(("botocore", "boto3", __name__)):
            return name.startswith("turnstop_local")
        frame = frame.f_back  # type: ignore[assignment]
    return False


def required_actions(service: str, operation: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (IAM action, physical resource) pairs one API call is authorized against.

    The resource is what the call names: a table (``table/<name>``, ``table/<name>/index/<index>``),
    a queue URL (``queue-url/<url>``) or an event bus (``event-bus/<name>``).
    """
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            out = []
            for item in params.get("TransactItems") or []:
                for kind, action in _TRANSACT_WRITE.items():
                    if kind in item:
                        out.append((f"dynamodb:{action}", f"table/{item[kind].get('TableName')}"))
            return out
        if operation == "TransactGetItems":
            return [
                ("dynamodb:GetItem", f"table/{item['Get'].get('TableName')}")
                for item in params.get("TransactItems") or []
                if "Get" in item
            ]
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", f"table/{name}") for name in params.get("RequestItems") or {}]
        table = f"table/{params.get('TableName')}"
        if operation in _MAYBE_INDEX and params.get("IndexName"):
            table += f"/index/{params['IndexName']}"
        return [(f"dynamodb:{operation}", table)]
    if service == "sqs":
        # SendMessageBatch is authorized as sqs:SendMessage, and so on for the batch calls
        action = operation.removesuffix("Batch")
        return [(f"sqs:{action}", f"queue-url/{params.get('QueueUrl')}")]
    if service == "events":
        buses = {str(e.get("EventBusName") or "default") for e in params.get("Entries") or []}
        return [(f"events:{operation}", f"event-bus/{bus}") for bus in sorted(buses)]
    if service == "bedrock-runtime":  # a model call: authorized against the model (or its inference profile)
        action = {"ConverseStream": "InvokeModelWithResponseStream", "Converse": "InvokeModel"}.get(
            operation, operation
        )
        model = str(params.get("modelId") or "")
        kind = (
            "inference-profile" if "inference-profile/" in model or model[:3] in ("us.", "eu.") else "foundation-model"
        )
        return [(f"bedrock:{action}", f"{kind}/{model.rsplit('/', 1)[-1]}")]
    if service == "secretsmanager":
        return [(f"secretsmanager:{operation}", f"secret/{params.get('SecretId')}")]
    return [(f"{service}:{operation}", "*")]


class Recorder:
    """Turns calls into logical (function, action, resource) records and appends the new ones."""

    def __init__(self, path: Path, resources: LocalResources) -> None:
        self.path = path
        self._tables = {name: logical for logical, name in resources.tables.items()}
        self._queues = {q.url: logical for logical, q in resources.queues.items()}
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def logical(self, resource: str) -> str:
        """``table/<physical>...`` → ``table/<LogicalId>...``; ``queue-url/<url>`` → ``queue/<LogicalId>``."""
        kind, _, rest = resource.partition("/")
        if kind == "table":
            name, sep, index = rest.partition("/index/")
            return f"table/{self._tables.get(name, '?' + name)}{sep}{index}"
        if kind == "queue-url":
            return f"queue/{self._queues.get(rest, '?' + rest)}"
        return resource

    def record(self, function: str, service: str, operation: str, params: Mapping[str, Any]) -> None:
        rows = [(function, action, self.logical(r)) for action, r in required_actions(service, operation, params)]
        with self._lock:
            new = [row for row in rows if row not in self._seen]
            if not new:
                return
            self._seen.update(new)
            # one line per record, appended and flushed at once: the file is complete whenever the
            # test reads it, and several runtimes (one per store) can share it
            with open(self.path, "a", encoding="utf-8") as out:
                lines = (json.dumps({"function": f, "action": a, "resource": r}) + "\n" for f, a, r in new)
                out.write("".join(lines))

    def hook(self, model: Any, params: Mapping[str, Any], **_: Any) -> None:
        function = current_function()
        if function is None or _called_by_runtime():
            return
        try:
            self.record(function, model.service_model.service_name, model.name, params)
        except Exception:  # noqa: BLE001 - a recorder must never break the call it watches
            return


def _inherit_on_start(start: Callable[[threading.Thread], None]) -> Callable[[threading.Thread], None]:
    def started(self: threading.Thread) -> None:
        setattr(self, _ATTRIBUTE, current_function())
        start(self)

    return started


_installed: Recorder | None = None


def install(resources: LocalResources, environ: Mapping[str, str] | None = None) -> Recorder | None:
    """Start recording into ``$TURNSTOP_AWS_CALLS_FILE`` if it is set (once per process)."""
    global _installed
    path = (os.environ if environ is None else environ).get(CALLS_FILE)
    if not path or _installed is not None:
        return _installed
    import boto3

    recorder = Recorder(Path(path), resources)
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-parameter-build", recorder.hook)
    threading.Thread.start = _inherit_on_start(threading.Thread.start)  # type: ignore[method-assign,assignment]
    _installed = recorder
    return recorder


def read(path: Path) -> set[tuple[str, str, str]]:
    """The records of a calls file (absent: none)."""
    if not path.is_file():
        return set()
    rows: Iterable[str] = path.read_text(encoding="utf-8").splitlines()
    return {(r["function"], r["action"], r["resource"]) for r in map(json.loads, rows) if r}
