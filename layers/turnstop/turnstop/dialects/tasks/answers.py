"""The tasks dialect's answers, each described once (the OpenAPI document's schemas are these
classes): the seed's task object, the list of tasks and the error envelope.

The task object is built as a plain dict (``wire.task_object``: the cancel function answers
with it and loads no pydantic), as are the errors (``wire.error_body``);
tests/unit/test_answers.py and the dialect's tests check them against these models. The list
is built through its model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict

from turnstop.http.wire_model import WireModel

__all__ = [
    "TaskCancelledBeforeStart",
    "TaskList",
    "TaskObject",
    "TaskWarning",
    "TasksError",
    "TasksErrorDetail",
    "task_list",
]


# ----------------------------------------------------------------- the task object


class TaskWarning(WireModel):
    """The seed's warning: three strings; ``field`` names the task object's field it concerns."""

    model_config = ConfigDict(extra="allow")
    code: str
    message: str
    field: str


class TaskObject(WireModel):
    """The seed's task object: every field, always."""

    model_config = ConfigDict(extra="allow")
    object: Literal["task"]
    task_id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    capability: str
    model: str
    resolved_model: str | None
    metadata: dict[str, str]
    input: dict[str, Any]
    progress: dict[str, Any]
    output: dict[str, Any]
    warnings: list[TaskWarning]
    error: dict[str, Any] | None
    usage: dict[str, Any]
    billing: dict[str, Any]
    callback: dict[str, Any] | None
    created_at: str
    started_at: str | None
    completed_at: str | None
    cancel_requested_at: str | None
    links: dict[str, str]


class TaskList(WireModel):
    model_config = ConfigDict(extra="allow")
    object: Literal["list"]
    data: list[TaskObject]


class TaskCancelledBeforeStart(WireModel):
    """A cancel by Idempotency-Key before any task was created: a tombstone."""

    model_config = ConfigDict(extra="allow")
    object: Literal["task"]
    task_id: None
    status: Literal["cancelled"]
    idempotency_key: str
    cancel_requested_at: str
    warnings: list[TaskWarning]


# ----------------------------------------------------------------- errors


class TasksErrorDetail(WireModel):
    code: str
    message: str
    retryable: bool


class TasksError(WireModel):
    object: Literal["error"]
    error: TasksErrorDetail
    request_id: str


# ----------------------------------------------------------------- built through the models


def task_list(tasks: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    """A page of tasks (``wire.task_object``s), newest first."""
    return TaskList.model_validate(
        {"object": "list", "data": tasks, "has_more": next_cursor is not None, "next_cursor": next_cursor}
    ).wire()
