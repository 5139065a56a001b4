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
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")  # no X-Ray daemon here


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
    """Counts DynamoDB API calls by operation name, through botocore's event hooks: with ``table``,
    only the calls on that table (the tests share one client per endpoint, so a call another
    case's leftover Python thread makes on its own table is never counted here)."""

    def __init__(self, client: Any, table: str | None = None) -> None:
        self.calls: list[str] = []
        self.table = table
        client.meta.events.register("before-call.dynamodb.*", self._record)

    def _record(self, model: Any, params: Any = None, **_: Any) -> None:
        if self.table is None or self.table in repr(params):
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


class CapacityMeter:
    """Asks DynamoDB for the capacity every call consumes (``ReturnConsumedCapacity=INDEXES``)
    and records it per call: the table's units and each index's. DynamoDB Local reports them
    by AWS's rules; moto does not report index units."""

    OPS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "GetItem", "Query", "BatchWriteItem"}

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[tuple[str, dict[str, float]]] = []
        client.meta.events.register("provide-client-params.dynamodb.*", self._ask)
        client.meta.events.register("after-call.dynamodb.*", self._record)

    def close(self) -> None:
        self.client.meta.events.unregister("provide-client-params.dynamodb.*", self._ask)
        self.client.meta.events.unregister("after-call.dynamodb.*", self._record)

    def _ask(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in self.OPS:
            params.setdefault("ReturnConsumedCapacity", "INDEXES")

    def _record(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name not in self.OPS:
            return
        units: dict[str, float] = {}
        consumed = parsed.get("ConsumedCapacity") or []
        for c in consumed if isinstance(consumed, list) else [consumed]:
            units["table"] = units.get("table", 0.0) + float(
                (c.get("Table") or {}).get("CapacityUnits", c.get("CapacityUnits", 0))
            )
            for index, v in (c.get("GlobalSecondaryIndexes") or {}).items():
                units[index] = units.get(index, 0.0) + float(v.get("CapacityUnits", 0))
        self.calls.append((model.name, units))

    def reset(self) -> None:
        self.calls.clear()

    def index_writes(self) -> dict[str, float]:
        """Units written to each index over the recorded calls."""
        out: dict[str, float] = {}
        for _, units in self.calls:
            for name, v in units.items():
                if name != "table":
                    out[name] = out.get(name, 0.0) + v
        return out
