"""Fixtures shared by the tiers. ``env`` is a fresh table and store on whichever DynamoDB the
tier's ``ddb_client`` reaches; the cases in tests/stores run on each store (``store_kind``:
moto in the unit tier, DynamoDB Local in the integration tier)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
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


@functools.cache
def client_for(endpoint: str | None) -> Any:
    """One DynamoDB client per endpoint for the whole run (a client costs about 50 ms to make,
    every case makes a table of its own). Under moto, calls reach moto's stubber whenever a
    ``mock_aws`` is active, and each case's ``mock_aws`` starts from an empty backend; a case
    that hooks the client's events unhooks them (``CallCounter``, ``CapacityMeter.close``)."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


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
    counter = CallCounter(ddb_client, table)
    store = Store(table, clock=clock, dynamodb=ddb_client)
    yield Env(store, clock, counter, ddb_client)
    ddb_client.meta.events.unregister("before-call.dynamodb.*", counter._record)
    ddb_client.delete_table(TableName=table)
