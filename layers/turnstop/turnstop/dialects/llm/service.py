"""The llm dialect's operations on the shared core: create, retrieve, stream/resume, cancel.

Background-ness is part of the turn's scope (``llm:bg`` / ``llm:fg``), so "only background
responses can be cancelled" is part of the cancel's one conditional write: a foreground
response fails the condition and the old item (ALL_OLD) says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from turnstop.auth import Principal
from turnstop.core import errors, scopes
from turnstop.core.events import Event
from turnstop.core.ids import new_id
from turnstop.core.records import NewTurn
from turnstop.core.tokens import count_tokens
from turnstop.core.turn import Turn
from turnstop.dialects.llm import models, responses
from turnstop.dialects.llm.renderer import KIND, created_event
from turnstop.dialects.service import DialectService
from turnstop.idempotency.bindings import KeyBinding
from turnstop.providers.config import routes_for
from turnstop.runtime.live import LiveTurn, caught_up
from turnstop.runtime.runner import TurnRunner

ID_PREFIX = "resp_"
# How long a foreground (background=false, stream=false) create waits for its response before
# answering with the object as it stands (in_progress). Under CloudFront's 60 s origin read
# timeout: a silent wait any longer would be cut off with a 504 and retried by SDKs.
FOREGROUND_WAIT_S = 50.0


# ---------------------------------------------------------------------------------- the service


def wait_for_end(
    store: Any,
    turn: Turn,
    *,
    poll_ms: int,
    timeout_s: float = FOREGROUND_WAIT_S,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Turn:
    """A foreground JSON create answers with the finished response: poll the head until terminal."""
    deadline = monotonic() + timeout_s
    head: Turn | None = turn
    while head is not None and not head.terminal and monotonic() < deadline:
        sleep(poll_ms / 1000)
        head = store.turns.get(turn.id)
    return head or turn


class Llm(DialectService):
    def create(
        self,
        principal: Principal,
        body: models.CreateResponse,
        runner: TurnRunner | None = None,
        *,
        idempotency: KeyBinding | None = None,
        max_duration_ms: int | None = None,
    ) -> tuple[Turn, bool]:
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
            principal,
            idempotency,
            queue=not in_request,
        )

    def find(self, principal: Principal, rid: str) -> Turn:
        return responses.find(self.store, principal, rid)

    def response_json(self, turn: Turn) -> dict[str, Any]:
        return responses.response_json(self.store, turn)

    def run_live(self, turn: Turn, runner: TurnRunner, remaining_ms: Callable[[], int] | None) -> LiveTurn:
        """Run a foreground stream in this request; its reader gets each event as it comes."""
        channel, running = runner.start(turn, remaining_ms)
        created = created_event(turn)
        return LiveTurn(turn, channel, running, (Event(1, created.type, created.data),))

    def readable_after(self, turn: Turn, after: int) -> Turn:
        """The turn, once ``after`` is a cursor a reader may replay from and follow (a running
        turn's cursor may lead the store by one flush: wait for it); past the end it is a 400."""
        ready = caught_up(self.store, turn, after, self.settings.flush_ms / 1000 + 1)
        if ready is None:
            raise errors.InvalidRequest(
                f"Invalid 'starting_after': {after} is beyond the last event of this response.",
                param="starting_after",
                code="invalid_value",
            )
        return ready
