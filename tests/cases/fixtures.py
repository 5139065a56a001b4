"""Fixtures shared by the tiers. ``env`` is a fresh table and store on whichever DynamoDB the
tier's ``ddb_client`` reaches; the cases in tests/stores run on each store (``store_kind``:
moto in the unit tier, DynamoDB Local in the integration tier)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import CallCounter, create_table
from tests.fakes import FakeClock
from turnstop.store import Store

# The two stores, each a tier: `make test-unit` runs tests/stores with `-m "not integration"`,
# `make test-integration` with `-m "not unit"` (a case that needs no store runs in both).
MOTO = pytest.param("moto", marks=pytest.mark.unit, id="moto")
DYNAMODB_LOCAL = pytest.param("dynamodb_local", marks=pytest.mark.integration, id="dynamodb_local")

# For a case that needs the real engine: conditional writes serialized under concurrency (moto
# does not serialize concurrent writers), consumed capacity per index, the table's stream.
only_on_dynamodb_local = pytest.mark.parametrize("store_kind", [DYNAMODB_LOCAL], indirect=True)

_MOTO_LOCK = threading.RLock()


def serialize_aws_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's in-process backend is not thread-safe, and running turns write from their own
    threads (the keeper): serialize every AWS call, as the local runtime does for its moto."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def serialized(self: Any, operation: str, params: Any) -> Any:
        with _MOTO_LOCK:
            return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", serialized)


@dataclass
class Env:
    store: Store
    clock: FakeClock
    counter: CallCounter
    client: Any


@pytest.fixture
def env(ddb_client: Any, template: Any) -> Iterator[Env]:
    table = create_table(ddb_client, template)
    clock = FakeClock()
    counter = CallCounter(ddb_client)
    store = Store(table, clock=clock, dynamodb=ddb_client)
    yield Env(store, clock, counter, ddb_client)
    ddb_client.meta.events.unregister("before-call.dynamodb.*", counter._record)
    ddb_client.delete_table(TableName=table)
