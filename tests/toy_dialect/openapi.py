"""The toy dialect's OpenAPI table."""

from __future__ import annotations

from pydantic import BaseModel

from turnstop_local.openapi.spec import Dialect, Ok, Op, path


class ToyError(BaseModel):
    toy_error: dict[str, str]


class ToyCancel(BaseModel):
    id: str
    outcome: str


TOY = Dialect(
    "toy",
    "toy API",
    "A dialect that exists only in a test.",
    ToyError,
    (
        Op(
            "POST",
            "/v1/toy/turns/{turn_id}/cancel",
            "cancelToyTurn",
            "Stop a toy turn",
            {200: Ok("Already over", ToyCancel), 202: Ok("Stopping", ToyCancel)},
            params=(path("turn_id"),),
        ),
    ),
)
