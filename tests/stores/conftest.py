"""The cases in this directory run on each store: moto in-process, no network (the unit tier),
and DynamoDB Local, AWS's own engine over HTTP, started once per run (the integration tier).

Each case is written once; ``store_kind`` runs it on both, and its mark puts each run in its
tier. The DynamoDB Local run falls back to moto's server only when TURNSTOP_STORE=moto or no
Java 17+ is present; CI runs it on DynamoDB Local.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from tests.cases.fixtures import DYNAMODB_LOCAL, MOTO, client_for, env, serialize_aws_calls  # noqa: F401


@pytest.fixture(params=[MOTO, DYNAMODB_LOCAL])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def local_store() -> Iterator[Any]:
    from tests.conftest import ROOT
    from turnstop_local.store import LocalStore

    with LocalStore(ROOT) as store:
        yield store


@pytest.fixture
def ddb_client(store_kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if store_kind == "moto":
        serialize_aws_calls(monkeypatch)
        with mock_aws():
            yield client_for(None)
    else:
        yield client_for(request.getfixturevalue("local_store").dynamodb_endpoint)
