"""Running one turn: claim it, stream the model into memory, let the keeper make it durable,
notice a cancel and write the end.

Two Python threads per turn: the model's (``_drive``: model → renderer → ``ActiveTurn.emit``, never
waiting on the store) and the keeper's (``keeper.Keeper``: every store write). A streaming
request hands a ``LiveChannel`` so its reader gets each event as it is emitted. A redelivered
message for a turn whose worker died finalizes it instead of running it again.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from turnstop.core.errors import CommitRejected, Retryable
from turnstop.core.events import Event
from turnstop.core.turn import Status, Turn, TurnEnd, Usage, final_status_after_lost_worker
from turnstop.observability import logkeys
from turnstop.providers.base import CallAborted, ModelCall, ModelProvider, UpstreamError
from turnstop.providers.models import estimate_input
from turnstop.runtime.active import ActiveTurn, LiveChannel, ModelEnd, TurnStopping
from turnstop.runtime.keeper import DEADLINE_CANCEL, MAX_DURATION_ERROR, Cadence, Keeper, UpstreamRecord
from turnstop.runtime.model import Model, open_call
from turnstop.runtime.renderer import Renderers
from turnstop.store import Store
from turnstop.store.finish import Closing, FinishMode, LostLease, NeverStarted, record_upstream

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["MAX_DURATION_ERROR", "Cadence", "LeaseHeld", "TurnRunner", "WorkerResult"]


class WorkerResult(enum.StrEnum):
    """What handling one turn did."""

    COMPLETED = "completed"
    FAILED = "failed"
    INCOMPLETE = "incomplete"
    CANCELLED = "cancelled"
    ALREADY_FINAL = "already_final"  # a redelivered message for a finished turn
    MISSING = "missing"  # no such turn
    LOST_RACE = "lost_race"  # another writer finished it first
    LEASE_LOST = "lease_lost"  # this worker's lease was taken over; it stopped without writing


class LeaseHeld(Exception):
    """Another live worker holds the turn; the message should come back later."""


MODEL_LET_GO_S = 1.0
UPSTREAM_SETTLE_S = 3.0  # how long a cancelled call's provider may take to report its usage
MAX_DELTA_CHARS = 32_768


def pieces(text: str, size: int = MAX_DELTA_CHARS) -> list[str]:
    """``text`` in consecutive pieces of at most ``size`` characters (one piece when short)."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [text]


WORKER_LOST_ERROR = {"code": "worker_lost", "message": "The worker running this turn stopped responding"}
# finish reasons that mean "the output cap was reached" (OpenAI, Bedrock, Responses)
LENGTH_REASONS = frozenset({"length", "max_tokens", "max_output_tokens"})
UPSTREAM_CODES = {"timeout": "upstream_timeout", "rate_limited": "upstream_rate_limited"}


def upstream_error(error: UpstreamError) -> dict[str, str]:
    """A provider failure as a turn's error: a code by kind and the provider's safe message."""
    return {
        "code": UPSTREAM_CODES.get(error.kind.value, "upstream_error"),
        "message": f"The model provider failed: {error}",
    }


def with_retries(read: Callable[[], T], attempts: int = 3, pause_s: float = 0.1) -> T:
    """A read that may meet a transient store error (throttling), tried again a little later."""
    for attempt in range(attempts):
        try:
            return read()
        except Retryable:
            if attempt == attempts - 1:
                raise
            time.sleep(pause_s * (attempt + 1))
    raise AssertionError("unreachable")


class TurnRunner:
    def __init__(
        self,
        store: Store,
        model_factory: Callable[[Turn], ModelProvider | Model],
        *,
        renderers: Renderers,
        lease_ms: int,
        cadence: Cadence | None = None,
        owner: str | None = None,
        on_finished: Callable[[Turn, TurnEnd], None] | None = None,
        upstream: UpstreamRecord | None = None,
    ) -> None:
        self.store = store
        self.turns = store.turns
        self.model_factory = model_factory
        self.renderers = renderers
        self.cadence = cadence or Cadence(lease_ms=lease_ms)
        self.lease_ms = self.cadence.lease_ms
        self.owner = owner or f"w-{uuid.uuid4().hex[:12]}"
        self.on_finished = on_finished  # told after every finish this runner wrote (e.g. to queue a webhook)
        self.upstream = upstream  # the record of the provider's usage and cost stored on a finished turn

    # -- entry point for one queue message

    def handle(self, turn_id: str, remaining_ms: Callable[[], int] | None = None) -> WorkerResult:
        """Run or settle the turn. Returns what happened; raises LeaseHeld to be retried."""
        logkeys.reset(turn_id=turn_id)  # a new message: no key of the last one
        try:
            turn = self.turns.claim(turn_id, self.owner, self.lease_ms)
        except CommitRejected as e:
            return self._settle_unclaimable(e.old)
        return self.run(turn, remaining_ms)

    def _settle_unclaimable(self, old: Turn | None) -> WorkerResult:
        if old is None:
            return WorkerResult.MISSING
        logkeys.bind_turn(old)
        if old.cancelled_before_start:
            # Cancelled before any work started: record it so every reader sees the terminal event.
            return self._settle(self.turns.with_input(old), Status.CANCELLED, NeverStarted(), text="")
        if old.stored_status is Status.QUEUED and old.past_deadline(self.store.now()):
            # Queued past its caller's deadline: it never starts; cancel it (one write), then record it.
            _, head = self.turns.request_cancel(old.id, tenant=old.tenant, req=DEADLINE_CANCEL)
            return (
                self._settle_unclaimable(head) if head is not None and head.cancel_requested else WorkerResult.LOST_RACE
            )
        if old.stored_status is Status.RUNNING:
            if not old.lease_expired(self.store.now()):
                raise LeaseHeld(old.id)
            assert old.lease_expires_at is not None
            status = final_status_after_lost_worker(old)
            error = None if status is Status.CANCELLED else WORKER_LOST_ERROR
            text = self.turns.committed_text(old)
            turn = self.turns.with_input(old)
            return self._settle(turn, status, LostLease(old.lease_expires_at), text=text, error=error)
        return WorkerResult.ALREADY_FINAL

    def _settle(
        self, turn: Turn, status: Status, mode: FinishMode, *, text: str, error: dict[str, str] | None = None
    ) -> WorkerResult:
        """End a turn nobody is running (cancelled while queued, or its worker died) with one
        closing event after what is committed. A cancel that lands meanwhile wins."""
        renderer = self.renderers[turn.kind]
        at = self.store.now()
        end = TurnEnd(status, turn.usage, text, "", error, finished_at=at)
        events = [Event(turn.seq + 1 + i, e.type, e.data) for i, e in enumerate(renderer.on_end(turn, end))]
        # a dead worker's call cost what it had produced (an estimate); a turn never started, nothing
        upstream = (
            self.upstream(turn, turn.usage, True, text) if self.upstream and isinstance(mode, LostLease) else None
        )
        record = Closing(
            events,
            renderer.ledger(turn, end),
            renderer.closing_items(turn, end),
            closing=len(events),
            output=text,
            upstream=upstream,
        )
        try:
            finished = self.turns.finish(
                turn, status, record, usage=turn.usage, mode=mode, error=error, at=at, observed_at=at
            )
        except CommitRejected as e:
            old = e.old
            if isinstance(mode, LostLease) and status is not Status.CANCELLED and old and old.cancel_requested:
                return self._settle_unclaimable(old)
            return WorkerResult.LOST_RACE
        self._notify(finished, end)
        return WorkerResult(status.value)

    def _notify(self, turn: Turn, end: TurnEnd) -> None:
        if self.on_finished is not None:
            try:
                self.on_finished(turn, end)
            except Exception:  # the turn has ended; a failed notification must not undo that
                log.exception("after-finish hook failed for turn %s", turn.id)

    # -- running a claimed turn

    def start(self, turn: Turn, remaining_ms: Callable[[], int] | None = None) -> tuple[LiveChannel, threading.Thread]:
        """Run a turn this runner holds the lease of on a thread of its own, for the request
        that started it: its events come through the returned channel as they are emitted."""
        live = LiveChannel()
        run = logkeys.carried(self.run)  # the request's log keys go with its turn
        thread = threading.Thread(target=run, args=(turn, remaining_ms, live), name=f"turn-{turn.id}", daemon=True)
        thread.start()
        return live, thread

    def run(
        self, turn: Turn, remaining_ms: Callable[[], int] | None = None, live: LiveChannel | None = None
    ) -> WorkerResult:
        """Run a turn this runner holds the lease of, until it ends. Ends ``incomplete`` when
        the model has more to say past the request's ``max_output_tokens`` (the crossing
        chunk is cut at the limit), and ``failed`` (``max_duration``) shortly before the host's
        deadline (``remaining_ms``), so a turn always gets its terminal event and state."""
        logkeys.bind_turn(turn)
        renderer = self.renderers[turn.kind]
        active = ActiveTurn(turn, live)
        drive = logkeys.carried(self._drive)
        model = threading.Thread(target=drive, args=(active, turn), name=f"model-{turn.id}", daemon=True)
        model.start()
        ending = Keeper(self.store, active, renderer, self.owner, self.cadence, remaining_ms, self.upstream).run()
        if live is not None:
            live.close(detached=ending.status is None)
        # The model's call was aborted (its connection shut, whatever phase it was in); give its
        # thread a moment to unwind.
        model.join(MODEL_LET_GO_S)
        if ending.status is None:
            return WorkerResult.LEASE_LOST
        assert ending.turn is not None and ending.end is not None
        if ending.status is not Status.COMPLETED and getattr(active.opened, "settled", None) is not None:
            # a provider with a server-side cancel (Responses): let it land before this host may be
            # frozen; a streamed request's reader is not held for it
            settle = logkeys.carried(self._provider_settled)
            if live is None:
                settle(active, ending.turn, ending.status)
            else:
                threading.Thread(target=settle, args=(active, ending.turn, ending.status), daemon=True).start()
        logkeys.bind_turn(ending.turn)  # a cancel it observed: its source
        self._notify(ending.turn, ending.end)
        return WorkerResult(ending.status.value)

    def _provider_settled(self, active: ActiveTurn, turn: Turn, status: Status) -> None:
        """Wait (briefly) for a call whose provider cancels server-side to settle: the cancel was
        answered. A cancelled turn's estimate is then replaced by the usage the provider reported
        (one write to the terminal head; readers were answered already)."""
        call = active.opened
        settled = getattr(call, "settled", None)
        if call is None or settled is None or not settled.wait(UPSTREAM_SETTLE_S):
            return
        u = call.usage
        if status is not Status.CANCELLED or self.upstream is None or u is None or u.estimated:
            return
        record = self.upstream(
            turn, Usage(u.input_tokens, u.output_tokens, u.cached_tokens, u.reasoning_tokens), False, ""
        )
        if record is not None:
            try:
                record_upstream(self.store.turns.db, turn.id, record)
            except Exception:  # the estimate stands
                log.warning("turn %s: the provider's usage after the cancel was not recorded", turn.id)

    def _drive(self, active: ActiveTurn, turn: Turn) -> None:
        """The model's thread: provider call → renderer → memory. Never waits on the store.
        A stop aborts the call from the keeper's thread (``ActiveTurn.stop``)."""
        renderer = self.renderers[turn.kind]
        call: ModelCall | None = None
        ended = False
        try:
            start = renderer.on_start(turn)
            if start:
                active.emit(start)
            request = with_retries(lambda: renderer.model_request(turn, self.store))
            source = self.model_factory(turn)
            active.input_estimate = estimate_input(source, request)  # for a call that never reports usage
            call = open_call(source, request)
            active.attach(call)
            end = self._stream(active, turn, call)
            ended = True
            active.model_ended(end)
        except (TurnStopping, CallAborted):
            pass
        except UpstreamError as exc:  # the provider failed: the turn fails, unless a cancel won first
            log.warning("turn %s: model provider failed (%s)", turn.id, exc.kind.value)
            active.model_ended(ModelEnd(Status.FAILED, upstream_error(exc)))
        except Exception as exc:  # the model failed: the turn fails, unless a cancel won first
            log.exception("turn %s failed", turn.id)
            active.model_ended(
                ModelEnd(Status.FAILED, {"code": "model_error", "message": f"The model failed: {type(exc).__name__}"})
            )
        finally:
            if call is not None and not ended:
                call.abort()  # never leave an upstream call running behind a turn that ended

    def _stream(self, active: ActiveTurn, turn: Turn, call: ModelCall) -> ModelEnd:
        renderer = self.renderers[turn.kind]
        flush_bytes = self.cadence.flush_bytes
        for chunk in call:
            for piece in pieces(chunk.text):  # a huge model chunk becomes several events, none near a store limit
                active.emit(renderer.on_delta(turn, piece, chunk.kind), piece, chunk.kind, flush_bytes=flush_bytes)
        status = Status.INCOMPLETE if call.finish_reason in LENGTH_REASONS else Status.COMPLETED
        return ModelEnd(status, usage=call.usage, asks=getattr(call, "asks", None))
