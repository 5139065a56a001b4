"""Loads the Lambda functions by path (every one is ``app.py``) inside moto, with the table
and queue built from template.yaml, so handler tests run the real wiring with no network."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.conftest import ROOT, create_table
from turnstop.auth import create_api_key
from turnstop.store import Store
from turnstop_local.template import Template

EVENTS = ROOT / "events"
TEMPLATE = Template.load(ROOT / "template.yaml")
DEV_KEY = "ts_unit_dev_key"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


@dataclass
class Aws:
    table: str
    queue_url: str
    store: Store
    sqs: Any

    def function(self, name: str) -> ModuleType:
        """Import the template's function ``name`` (``omni_cancel`` is ``OmniCancelFunction``)
        fresh, as a cold start would: its code's app.py, with the app it serves (``TURNSTOP_APP``)."""
        (found,) = [f for f in TEMPLATE.functions.values() if name in (f.name, f.app is None and f.code_dir.name)]
        spec = importlib.util.spec_from_file_location(f"fn_{name}_{uuid.uuid4().hex[:8]}", found.code_dir / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        with pytest.MonkeyPatch.context() as env:
            if found.app:
                env.setenv("TURNSTOP_APP", found.app)
            spec.loader.exec_module(module)
        return module

    def drain_queue(self) -> list[dict[str, Any]]:
        """Receive every queued message as a Lambda SQS event record."""
        records: list[dict[str, Any]] = []
        while True:
            out = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            msgs = out.get("Messages", [])
            if not msgs:
                return records
            for m in msgs:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
                records.append(
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": {"ApproximateReceiveCount": "1"},
                        "messageAttributes": {},
                        "md5OfBody": m["MD5OfBody"],
                        "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:turns",
                        "awsRegion": "us-east-1",
                    }
                )


class Context:
    function_name = "unit"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:unit"
    aws_request_id = "req-unit"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def aws(template: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        table = create_table(ddb, template)
        queue_url = sqs.create_queue(QueueName=f"turns-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        monkeypatch.setenv("TURNSTOP_TABLE", table)
        monkeypatch.setenv("TURNSTOP_TURN_QUEUE_URL", queue_url)
        monkeypatch.setenv("TURNSTOP_SCRIPTED_STEP_MS", "2")
        monkeypatch.setenv("TURNSTOP_FLUSH_MS", "20")  # keepers publish and look for cancels quickly
        monkeypatch.setenv("TURNSTOP_CANCEL_CHECK_MS", "5")
        monkeypatch.setenv("TURNSTOP_GRACE_SECONDS", "120")
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "unit")
        import turnstop.store.db as dynamo

        monkeypatch.setattr(dynamo, "_clients", {})  # fresh clients inside this mock
        store = Store(table, queue_url=queue_url)
        create_api_key(table, "dev", [1], key=DEV_KEY, store=store)
        create_api_key(table, "other", [9], key="ts_unit_other_key", store=store)
        yield Aws(table, queue_url, store, sqs)
        wait_for_turn_threads()
    os.environ.pop("TURNSTOP_TABLE", None)


def wait_for_turn_threads(within_s: float = 20.0) -> None:
    """Turns run on threads of their own: let every one end before its table goes away."""
    import threading
    import time

    deadline = time.monotonic() + within_s
    for t in threading.enumerate():
        if t.name.startswith(("turn-", "model-")):
            t.join(max(0.0, deadline - time.monotonic()))


def with_principal(event: dict[str, Any], tenant: str | None) -> dict[str, Any]:
    """The event as the authorizer would pass it on for ``tenant`` (None: anonymous)."""
    ev = json.loads(json.dumps(event))
    ctx = {"tenant": tenant, "account_ids": "1", "key_id": f"key_{tenant}"} if tenant else {"anonymous": "true"}
    ev["requestContext"]["authorizer"] = {"lambda": ctx}
    return ev
