"""Unit tier: moto in-process, no network."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from tests.cases.fixtures import client_for, env, serialize_aws_calls  # noqa: F401


@pytest.fixture(autouse=True)
def one_aws_call_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    serialize_aws_calls(monkeypatch)


@pytest.fixture
def ddb_client() -> Iterator[Any]:
    with mock_aws():
        yield client_for(None)
