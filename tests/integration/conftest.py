"""Integration tier: DynamoDB Local (AWS's own engine) over HTTP, started once per run.

Falls back to moto's server only when TURNSTOP_STORE=moto or no Java 17+ is present;
CI runs this tier on DynamoDB Local.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.cases.fixtures import env  # noqa: F401


@pytest.fixture(scope="session")
def local_store() -> Iterator[Any]:
    from tests.conftest import ROOT
    from turnstop_local.store import LocalStore

    with LocalStore(ROOT) as store:
        yield store


@pytest.fixture
def ddb_client(local_store: Any) -> Any:
    return boto3.client("dynamodb", endpoint_url=local_store.dynamodb_endpoint, region_name="us-east-1")
