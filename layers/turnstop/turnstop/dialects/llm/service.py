"""The llm dialect's operations on the shared core: create, retrieve, stream/resume, cancel.

Background-ness is part of the turn's scope (``llm:bg`` / ``llm:fg``), so "only background
responses can be cancelled" is part of the cancel's one conditional write: a foreground
response fails the condition and the old item (ALL_OLD) says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from turnstop.auth import Principal
from turnstop.core import errors, scopes
from turnstop.core.events import Event
from turnstop.core.ids import new_id
from turnstop.core.records import NewTurn
from turnstop.core.tokens import count_tokens
from turnstop.core.turn import Turn
from turnstop.dialects.llm import models, responses, wire
from turnstop.dialects.llm.renderer import KIND, RENDERER, created_event
from turnstop.dialects.service import DialectService
from turnstop.http.body import parse_body
from turnstop.http.response import StreamingResponse
from turnstop.http.sse import caught_up, live_response, stream_response
from turnstop.idempotency.claims import IdempotencyClaim
from turnstop.providers.config import routes_for
from turnstop.runtime.runner import TurnRunner

ID_PREFIX = "resp_"
MAX_CURSOR_DIGITS = 12
# How long a foreground (background=false, stream=false) create waits for its response before
# answering with the object as it stands (in_progress). Under CloudFront's 60 s origin read
# timeout: a silent wait any longer would be cut off with a 504 and retried by SDKs.
FOREGROUND_WAIT_S = 50.0


# ---------------------------------------------------------------------------------- input


def parse_create(event: Mapping[str, Any], max_bytes: int) -> models.CreateResponse:
    body = parse_body(event, models.CreateResponse, max_bytes, messages=wire.BODY_MESSAGES, describe=_validation_error)
    if not body.prompt.strip():
        raise errors.InvalidRequest("'input' must contain some text.", param="input", code="empty_input")
    return body


_FIELD_HINTS = {
    "input": "expected a string or a list of message items ({'role': ..., 'content': <text or input_text parts>})",
    "tools": "tools are not supported by this deployment; send an empty list or omit it",
    "metadata": "expected an object of string keys to string values",
}


def _validation_error(e: ValidationError) -> errors.InvalidRequest:
    first = e.errors()[0]
    loc = [str(p) for p in first.get("loc", ())]
    param = loc[0] if loc else None
    if first.get("type") == "missing" and len(loc) == 1:
        return errors.InvalidRequest(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    hint = _FIELD_HINTS.get(param or "") or first.get("msg", "invalid value")
    if param == "metadata" and "at most" in str(first.get("msg", "")):
        hint = str(first.get("msg")).removeprefix("Value error, ")
    return errors.InvalidRequest(f"Invalid value for '{param}': {hint}.", param=param, code="invalid_value")


def parse_starting_after(query: Mapping[str, str]) -> int:
    """A plain decimal sequence number: no sign, spaces or underscores."""
    raw = query.get("starting_after")
    if raw is None or raw == "":
        return 0
    digits = raw[1:] if raw.startswith("-") else raw
    if not (digits.isascii() and digits.isdigit() and len(digits) <= MAX_CURSOR_DIGITS):
        raise errors.InvalidRequest(
            "Invalid 'starting_after': expected a non-negative integer.", param="starting_after", code="invalid_value"
        )
    if raw.startswith("-"):
        raise errors.InvalidRequest(
            f"Invalid 'starting_after': {raw} is negative; expected a non-negative integer.",
            param="starting_after",
            code="invalid_value",
        )
    return int(raw)


def parse_stream_flag(query: Mapping[str, str]) -> bool:
    raw = (query.get("stream") or "false").lower()
    if raw not in ("true", "false"):
        raise errors.InvalidRequest("Invalid 'stream': expected true or false.", param="stream", code="invalid_value")
    return raw == "true"


# ---------------------------------------------------------------------------------- the service


def wait_for_end(
    store: Any, turn: Turn, *, poll_ms: int, timeout_s: float = FOREGROUND_WAIT_S,
    sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
) -> Turn:  # fmt: skip
    """A foreground JSON create answers with the finished response: poll the head until terminal."""
    deadline = monotonic() + timeout_s
    head: Turn | None = turn
    while head is not None and not head.terminal and monotonic() < deadline:
        sleep(poll_ms / 1000)
        head = store.turns.get(turn.id)
    return head or turn


class Llm(DialectService):
    def create(
        self, principal: Principal, body: models.CreateResponse, runner: TurnRunner | None = None, *,
        idempotency: IdempotencyClaim | None = None, max_duration_ms: int | None = None,
    ) -> tuple[Turn, bool]:  # fmt: skip
        """Validate against state (model, previous response), write the turn and queue it;
        a foreground stream runs in the request instead, under ``runner``'s lease. Returns
        (turn, replayed): an Idempotency-Key used before with the same request gives back the
        response it created."""
        if routes_for(self.settings.models).get(body.model) is None:
            raise errors.InvalidRequest(
                f"The requested model '{body.model[:120]}' does not exist.", param="model", code="model_not_found"
            )
        if body.background and not body.store:
            raise errors.InvalidRequest(
                "Background responses must be stored: send store=true (the default) with background=true.",
                param="store",
                code="invalid_value",
            )
        if body.previous_response_id is not None:
            prev = body.previous_response_id
            if not responses.is_id(prev) or responses.visible(self.store, principal, prev) is None:
                raise errors.InvalidRequest(
                    f"Previous response with id '{prev[:80]}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
        new = NewTurn(
            id=new_id(ID_PREFIX),
            kind=KIND,
            tenant=principal.tenant,
            scope=scopes.LLM_BACKGROUND if body.background else scopes.LLM_FOREGROUND,
            grace_ms=int(self.settings.llm_retention_seconds * 1000),
            input=body.to_turn_input(),
            end_user=principal.end_user,
            input_tokens=count_tokens((body.instructions or "") + " " + body.prompt),
            max_duration_ms=max_duration_ms,
            keep_request=body.store,  # a later response may continue it (previous_response_id)
        )
        in_request = runner is not None and body.stream and not body.background
        run_as = runner.owner if in_request and runner else None
        lease = runner.lease_ms if runner else 0
        return self.start(
            lambda: self.store.turns.start(new, created_event, idempotency=idempotency, run_as=run_as, lease_ms=lease),
            principal, idempotency, queue=not in_request,
        )  # fmt: skip

    def find(self, principal: Principal, rid: str) -> Turn:
        return responses.find(self.store, principal, rid)

    def response_json(self, turn: Turn) -> dict[str, Any]:
        return responses.response_json(self.store, turn)

    def run_live(self, turn: Turn, runner: TurnRunner, remaining_ms: Callable[[], int] | None) -> StreamingResponse:
        """Run a foreground stream in this request, each event to the reader as it comes."""
        channel, running = runner.start(turn, remaining_ms)
        created = created_event(turn)
        first = [Event(1, created.type, created.data)]
        return live_response(
            self.store, self.settings, turn, channel, running, renderer=RENDERER, render=wire.frame, first=first
        )

    def stream(self, turn: Turn, after: int) -> StreamingResponse:
        """Replay after ``after`` and follow (a running turn's cursor may lead the store by
        one flush: wait for it); a cursor past the end is a 400."""
        ready = caught_up(self.store, turn, after, self.settings.flush_ms / 1000 + 1)
        if ready is None:
            raise errors.InvalidRequest(
                f"Invalid 'starting_after': {after} is beyond the last event of this response.",
                param="starting_after",
                code="invalid_value",
            )
        return stream_response(self.store, self.settings, ready, after, renderer=RENDERER, render=wire.frame)
