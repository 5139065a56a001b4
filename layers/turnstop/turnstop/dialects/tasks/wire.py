"""The tasks dialect's wire, as its cancel function loads it (no pydantic): the seed's error
shape and its task object, plain dicts of the models in ``answers``.

Errors use the seed's own error sub-object, in one documented envelope:
``{"object": "error", "error": {"code", "message", "retryable"}, "request_id"}``. A raise site
may name a more specific ``code`` (``unsupported_model``) and ``retryable`` in its details.

The task object has every field of the seed, always, with the seed's types; amounts are exact
decimal strings and times RFC 3339 UTC. It is rendered from the head, the committed output and
the callback item, so the same function serves reads, cancels, replays and callbacks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.event_handler import Response

from turnstop.core import errors
from turnstop.core.clock import iso
from turnstop.core.turn import Status, Turn, Usage
from turnstop.dialects.tasks import pricing
from turnstop.dialects.tasks.renderer import WIRE_STATUS, charged, refund_of
from turnstop.http.body import BodyMessages
from turnstop.http.errors import DEFAULT_STATUS, ErrorInfo, ErrorShape
from turnstop.store.callbacks import PENDING, Callback

RETRYABLE_STATUSES = frozenset({429, 500, 503})
# failures worth retrying with the same request (a new task): transient ones
RETRYABLE_FAILURES = frozenset({"model_error", "worker_lost"})
TASK_NOT_FOUND = "No such task"
COUNTERS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "image_count",
    "image_pixels",
    "video_seconds",
    "audio_seconds",
    "characters",
)


def error_body(info: ErrorInfo) -> dict[str, Any]:
    retryable = info.details.get("retryable", info.status in RETRYABLE_STATUSES)
    return {
        "object": "error",
        "error": {
            "code": str(info.details.get("code", info.code)),
            "message": info.message,
            "retryable": bool(retryable),
        },
        "request_id": info.request_id,
    }


SHAPE = ErrorShape(
    error_body,
    status={**DEFAULT_STATUS, errors.IdempotencyMismatch: (422, "idempotency_key_reused")},
    internal_message="Internal error; the request may be retried",
    not_found_message="No such route",
    dialect="tasks",
)

BODY_MESSAGES = BodyMessages(
    too_large="Request body exceeds {max} bytes",
    empty="Request body is required: a JSON object",
    malformed="Malformed JSON body: {error}",
    not_object="Request body must be a JSON object",
)


def cancelled_before_start(key: str, requested_at: int) -> dict[str, Any]:
    """A cancel by Idempotency-Key that no task has met yet (``answers.TaskCancelledBeforeStart``)."""
    return {
        "object": "task",
        "task_id": None,
        "status": "cancelled",
        "idempotency_key": key,
        "cancel_requested_at": iso(requested_at),
        "warnings": [],
    }


def warning(code: str, message: str, field: str) -> dict[str, Any]:
    """The seed's warning: ``field`` is always a string, the task object's field it concerns."""
    return {"code": code, "message": message, "field": field}


# ------------------------------------------------------------------------------ answers


@dataclass(frozen=True)
class Answer:
    """A status and the exact JSON text of a body: what a replay repeats byte for byte."""

    status: int
    body: str
    replayed: bool = False
    location: str | None = None

    @classmethod
    def of(cls, status: int, body: dict[str, Any], location: str | None = None) -> Answer:
        return cls(status, json.dumps(body, separators=(",", ":"), ensure_ascii=False), location=location)

    def response(self) -> Response:
        headers = {"Idempotent-Replayed": "true"} if self.replayed else {}
        if self.location:
            headers["Location"] = self.location
        return Response(status_code=self.status, content_type="application/json", body=self.body, headers=headers)


# ------------------------------------------------------------------------------ the task object


def as_created(turn: Turn) -> Turn:
    """The head as its create answered it: a create replay answers exactly that again. A task
    born cancelled (its Idempotency-Key was cancelled first) was created cancelled."""
    flag = (
        {}
        if turn.born_cancelled
        else {
            "cancel_requested_at": None,
            "cancel_reason": None,
            "cancel_actor": None,
            "cancel_source": None,
        }
    )
    return turn.replace(
        stored_status=Status.QUEUED,
        seq=1,
        started_at=None,
        finished_at=None,
        stored_expires_at=None,
        lease_owner=None,
        lease_expires_at=None,
        usage=Usage(turn.usage.input_tokens, 0),
        error=None,
        **flag,
    )


def expected_tokens(turn: Turn) -> int:
    return max(1, int(turn.input.get("expected_output_tokens") or 1))


def progress(turn: Turn) -> dict[str, Any]:
    """0–100 (100 only once succeeded), a stage and a message that move while it runs."""
    status, done = turn.status, turn.usage.output_tokens
    percent = min(99, done * 100 // expected_tokens(turn))
    of = f"{done} of {expected_tokens(turn)} output tokens"
    if status is Status.QUEUED:
        return {"percent": 0, "stage": "queued", "message": "Waiting for a worker"}
    if status is Status.RUNNING:
        if turn.cancel_requested:
            return {"percent": percent, "stage": "cancelling", "message": f"Cancel requested; stopping after {of}"}
        return {"percent": percent, "stage": "generating", "message": f"Generated {of}"}
    if WIRE_STATUS[status] == "succeeded":
        return {"percent": 100, "stage": "completed", "message": f"Completed: {done} output tokens"}
    if status is Status.CANCELLED:
        return {"percent": percent if turn.started_at else 0, "stage": "cancelled", "message": f"Cancelled after {of}"}
    return {"percent": percent, "stage": "failed", "message": f"Failed after {of}"}


def task_error(turn: Turn) -> dict[str, Any] | None:
    """Null unless it failed or was cancelled; a cancel's reason is its message, verbatim."""
    if turn.status is Status.CANCELLED:
        if turn.cancel_source == "enqueue_failed":
            message = "The task could not be queued; nothing ran"
        else:
            message = turn.cancel_reason or "The task was cancelled"
        return {"code": "cancelled", "message": message, "retryable": False}
    if turn.status is Status.FAILED:
        err = turn.error or {}
        code = str(err.get("code") or "failed")
        return {
            "code": code,
            "message": str(err.get("message") or "The task failed"),
            "retryable": code in RETRYABLE_FAILURES,
        }
    return None


def task_warnings(turn: Turn) -> list[dict[str, Any]]:
    if turn.status is Status.INCOMPLETE:
        cap = turn.input.get("max_output_tokens")
        return [
            warning(
                "max_output_tokens_reached", f"Output stopped at max_output_tokens ({cap})", "input.max_output_tokens"
            )
        ]
    return []


def usage_and_billing(turn: Turn) -> tuple[dict[str, Any], dict[str, Any]]:
    price = pricing.price_of(turn)
    paid = charged(turn)
    earned, refunded = refund_of(turn, turn.status, turn.usage) if turn.terminal else (Decimal(0), Decimal(0))
    billed = turn.terminal and earned > 0
    usage: dict[str, Any] = {name: 0 for name in COUNTERS}
    usage.update(input_tokens=turn.usage.input_tokens, output_tokens=turn.usage.output_tokens)
    usage["lines"] = []
    left = earned if billed else Decimal(0)  # what was kept, line by line: never more than the charge
    for line in pricing.lines(price, turn.usage):
        line_billed = min(line.credits, left)
        left -= line_billed
        usage["lines"].append(
            {
                "meter": line.meter,
                "quantity": str(line.quantity),
                "unit": line.unit,
                "billed_amount_credits": pricing.amount(line_billed),
                "billed_amount_credits_usd_reference": pricing.amount(pricing.usd(line_billed)),
            }
        )
    usage["credits"] = pricing.amount(earned)
    usage["credits_usd_reference"] = pricing.amount(pricing.usd(earned))
    billing = {
        "charged_credits": pricing.amount(paid),
        "refunded_credits": pricing.amount(refunded),
        "charged_credits_usd_reference": pricing.amount(pricing.usd(paid)),
        "refunded_credits_usd_reference": pricing.amount(pricing.usd(refunded)),
        "currency": "USD",
    }
    return usage, billing


def callback_body(turn: Turn, cb: Callback | None) -> dict[str, Any] | None:
    url = turn.input.get("callback_url")
    if not url:
        return None
    if cb is None:  # not finished yet (or its finish not recorded yet): nothing sent so far
        return {"url": url, "status": PENDING, "attempt_count": 0, "delivered_at": None, "last_error": None}
    return {
        "url": url,
        "status": cb.status,
        "attempt_count": cb.attempt_count,
        "delivered_at": iso(cb.delivered_at),
        "last_error": cb.last_error,
    }


def links(turn: Turn) -> dict[str, str]:
    base = str(turn.input.get("links_base") or "")
    return {"self": f"{base}/v1/tasks/{turn.id}", "cancel": f"{base}/v1/tasks/{turn.id}/cancel"}


def task_object(
    turn: Turn, *, text: str | None, callback: Callback | None = None, warnings: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """The seed's task object. ``text`` is the committed output; None renders ``output: {}``
    (list pages leave outputs out)."""
    i = turn.input
    usage, billing = usage_and_billing(turn)
    return {
        "object": "task",
        "task_id": turn.id,
        "status": WIRE_STATUS[turn.status],
        "capability": i["capability"],
        "model": i["model"],
        "resolved_model": i["resolved_model"],
        "metadata": dict(i.get("metadata") or {}),
        "input": dict(i.get("input") or {}),
        "progress": progress(turn),
        "output": {} if text is None else {"text": text},
        "warnings": [*task_warnings(turn), *warnings],
        "error": task_error(turn),
        "usage": usage,
        "billing": billing,
        "callback": callback_body(turn, callback),
        "created_at": iso(turn.created_at),
        "started_at": iso(turn.started_at),
        "completed_at": iso(turn.completed_at) if turn.terminal else None,
        "cancel_requested_at": iso(turn.cancel_requested_at),
        "links": links(turn),
    }
