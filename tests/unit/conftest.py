"""Unit tier: moto in-process, no network."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.cases.fixtures import env  # noqa: F401

_MOTO_LOCK = threading.RLock()


@pytest.fixture(autouse=True)
def one_aws_call_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's in-process backend is not thread-safe, and running turns write from their own
    threads (the keeper): serialize every AWS call, as the local runtime does for its moto."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def serialized(self: Any, operation: str, params: Any) -> Any:
        with _MOTO_LOCK:
            return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", serialized)


@pytest.fixture
def ddb_client() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")
