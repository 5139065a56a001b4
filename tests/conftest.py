"""Shared test set-up: import paths, and tables built from template.yaml's own key schema."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT / "layers" / "turnstop", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "turnstop-tests")
os.environ.setdefault("POWERTOOLS_DEV", "false")


@pytest.fixture(scope="session")
def template() -> Any:
    from turnstop_local.template import Template

    return Template.load(ROOT / "template.yaml")


def create_table(client: Any, template: Any) -> str:
    """A fresh table with the template's TurnTable schema; returns its name."""
    spec = template.table_spec("TurnTable")
    name = f"turnstop-test-{uuid.uuid4().hex[:12]}"
    client.create_table(TableName=name, **spec.kwargs)
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    return name


class CallCounter:
    """Counts DynamoDB API calls by operation name, through botocore's event hooks."""

    def __init__(self, client: Any) -> None:
        self.calls: list[str] = []
        client.meta.events.register("before-call.dynamodb.*", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def reset(self) -> None:
        self.calls.clear()

    READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}

    @property
    def reads(self) -> list[str]:
        return [c for c in self.calls if c in self.READS]

    @property
    def writes(self) -> list[str]:
        return [c for c in self.calls if c not in self.READS]
