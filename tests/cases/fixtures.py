"""Fixtures shared by the unit (moto) and integration (DynamoDB Local) tiers; each tier's
conftest provides ``ddb_client``, and the same store and runtime cases run on both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import CallCounter, create_table
from tests.fakes import FakeClock
from turnstop.store import Store


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
