"""The tasks OpenAPI table: every operation, its answers and the seed's examples."""

from __future__ import annotations

import turnstop_local.openapi.spec  # noqa: F401  (puts the layer on sys.path first)
from turnstop.dialects.tasks import models as tasks_models
from turnstop.dialects.tasks.answers import TaskCancelledBeforeStart, TaskList, TaskObject, TasksError
from turnstop_local.openapi.requests import StrictCancelReason
from turnstop_local.openapi.spec import (
    IDEMPOTENCY_KEY,
    MAX_DURATION,
    ON_BEHALF_OF,
    START_KEY,
    STRICT_REQUEST_ID,
    Dialect,
    Ok,
    Op,
    Param,
    path,
)

TASKS = Dialect(
    "tasks",
    "turnstop tasks API",
    "Async jobs, charged on acceptance and refunded in full on cancel or failure (seed 003). "
    'Errors: `{"object": "error", "error": {"code", "message", "retryable"}, "request_id"}`. '
    "`Idempotency-Key` on create and cancel replays the first answer exactly (`Idempotent-Replayed: true`).",
    TasksError,
    (
        Op(
            "POST",
            "/v1/tasks",
            "createTask",
            "Create a task: queued, charged its estimate",
            {202: Ok("Queued", TaskObject, headers=("Location",))},
            (401, 409, 410, 422),
            tasks_models.CreateTask,
            True,
            (ON_BEHALF_OF, STRICT_REQUEST_ID, IDEMPOTENCY_KEY, MAX_DURATION),
        ),
        Op(
            "GET",
            "/v1/tasks",
            "listTasks",
            "The caller's tasks, newest first",
            {200: Ok("Tasks", TaskList)},
            (401,),
            params=(
                ON_BEHALF_OF,
                STRICT_REQUEST_ID,
                Param(
                    "status",
                    "query",
                    {"type": "string", "enum": ["", "queued", "running", "succeeded", "failed", "cancelled"]},
                    "Only tasks in this status (empty: any)",
                ),
                Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 100}),
                Param("cursor", "query", {"type": "string", "maxLength": 512}),
            ),
        ),
        Op(
            "GET",
            "/v1/tasks/{task_id}",
            "getTask",
            "A task",
            {200: Ok("The task", TaskObject)},
            (401,),
            params=(path("task_id"), ON_BEHALF_OF, STRICT_REQUEST_ID),
        ),
        Op(
            "POST",
            "/v1/tasks/{task_id}/cancel",
            "cancelTask",
            "Cancel a task (best-effort)",
            {
                200: Ok(
                    "Already terminal; returns final state (idempotent), or a queued task cancelled at once",
                    TaskObject,
                ),
                202: Ok("Running: cancel requested; it ends cancelled", TaskObject),
            },
            (401, 409, 422),
            StrictCancelReason,
            False,
            (path("task_id", "Task Id"), ON_BEHALF_OF, STRICT_REQUEST_ID, IDEMPOTENCY_KEY),
        ),
        Op(
            "POST",
            "/v1/tasks/cancel",
            "cancelTaskByKey",
            "Cancel the task an Idempotency-Key created, or the one it will create",
            {
                200: Ok("The task", TaskObject),
                202: Ok("The task, or a tombstone when none exists yet", any_of=(TaskObject, TaskCancelledBeforeStart)),
            },
            (401, 409),
            StrictCancelReason,
            False,
            (ON_BEHALF_OF, STRICT_REQUEST_ID, START_KEY),
        ),
    ),
    {
        404: {
            "not_found": {
                "object": "error",
                "error": {"code": "not_found", "message": "No such task", "retryable": False},
                "request_id": "9b1c",
            }
        },
    },
    {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": "Bearer API key."},
    },
)
