"""The tasks dialect's id and request-id checks: what every route (the cancel function too)
checks first, with no request models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from turnstop.core import errors
from turnstop.core.ids import matches
from turnstop.dialects.tasks.renderer import ID_PREFIX
from turnstop.http.api import valid_request_id
from turnstop.http.body import headers_of


def check_task_id(task_id: str) -> None:
    """A malformed id is as unknown as any other: 404, same message."""
    if not matches(ID_PREFIX, task_id):
        raise errors.NotFound("No such task")


def strict_request_id(event: Mapping[str, Any]) -> None:
    """Tasks refuse a malformed X-Request-Id (the shared resolver would replace it silently)."""
    sent = headers_of(event).get("x-request-id")
    if sent and not valid_request_id(sent):
        raise errors.InvalidRequest("X-Request-Id must be 1 to 200 printable ASCII characters")
