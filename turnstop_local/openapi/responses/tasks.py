"""The tasks dialect's answers: the seed's task object."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class TaskWarning(BaseModel):
    """The seed's warning: three strings; ``field`` names the task object's field it concerns."""

    model_config = ConfigDict(extra="allow")
    code: str
    message: str
    field: str


class TaskObject(BaseModel):
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


class TaskList(BaseModel):
    model_config = ConfigDict(extra="allow")
    object: Literal["list"]
    data: list[TaskObject]


class TaskCancelledBeforeStart(BaseModel):
    """A cancel by Idempotency-Key before any task was created: a tombstone."""

    model_config = ConfigDict(extra="allow")
    object: Literal["task"]
    task_id: None
    status: Literal["cancelled"]
    idempotency_key: str
    cancel_requested_at: str
    warnings: list[TaskWarning]
