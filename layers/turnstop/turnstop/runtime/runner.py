"""Running one turn: claim, stream the model through ``emit``/``checkpoint``, finish.

Every commit is the cancel check (see ``Turns.commit``). When it is refused the old head says
why: a cancel was requested (write ``…cancelled`` and the final state together, bill nothing)
or the lease is gone (stop without writing). A redelivered message for a turn whose worker
died finalizes it instead of running it again.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Callable, Iterator

from turnstop.core.errors import CommitRejected
from turnstop.core.tokens import first_tokens
from turnstop.core.turn import Status, Turn, TurnEnd, Usage, final_status_after_lost_worker
from turnstop.runtime.active import ActiveTurn, Heartbeat
from turnstop.runtime.model import Chunk, Model
from turnstop.runtime.renderer import Renderers
from turnstop.store import Store
from turnstop.store.finish import Closing, FinishMode, LostLease, MyLease, NeverStarted

log = logging.getLogger(__name__)


class WorkerResult(enum.StrEnum):
    """What handling one turn message did."""

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


Stop = tuple[Status, dict[str, str] | None]
MAX_DURATION_ERROR = {"code": "max_duration", "message": "The turn ran out of time"}
WORKER_LOST_ERROR = {"code": "worker_lost", "message": "The worker running this turn stopped responding"}


class TurnRunner:
    def __init__(
        self,
        store: Store,
        model_factory: Callable[[Turn], Model],
        *,
        renderers: Renderers,
        lease_ms: int,
        flush_ms: int = 0,
        owner: str | None = None,
        stop_margin_ms: int = 10_000,
        heartbeat_s: float | None = None,
        on_finished: Callable[[Turn, TurnEnd], None] | None = None,
    ) -> None:
        self.store = store
        self.turns = store.turns
        self.model_factory = model_factory
        self.renderers = renderers
        self.lease_ms = lease_ms
        self.flush_ms = flush_ms
        self.owner = owner or f"w-{uuid.uuid4().hex[:12]}"
        self.stop_margin_ms = stop_margin_ms
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else lease_ms / 6000
        self.on_finished = on_finished  # told after every finish this runner wrote (e.g. to queue a webhook)

    # -- entry point for one queue message

    def handle(self, turn_id: str, remaining_ms: Callable[[], int] | None = None) -> WorkerResult:
        """Run or settle the turn. Returns what happened; raises LeaseHeld to be retried."""
        try:
            turn = self.turns.claim(turn_id, self.owner, self.lease_ms)
        except CommitRejected as e:
            return self._settle_unclaimable(e.old)
        return self.run(turn, remaining_ms)

    def _settle_unclaimable(self, old: Turn | None) -> WorkerResult:
        if old is None:
            return WorkerResult.MISSING
        if old.cancelled_before_start:
            # Cancelled before any work started: record it so every reader sees the terminal event.
            return self._finish(old, Status.CANCELLED, old.usage, NeverStarted(), text="")
        if old.stored_status is Status.RUNNING:
            if not old.lease_expired(self.store.now()):
                raise LeaseHeld(old.id)
            assert old.lease_expires_at is not None
            status = final_status_after_lost_worker(old)
            error = None if status is Status.CANCELLED else WORKER_LOST_ERROR
            text = self.turns.committed_text(old)
            return self._finish(old, status, old.usage, LostLease(old.lease_expires_at), text=text, error=error)
        return WorkerResult.ALREADY_FINAL

    def _finish(self, turn: Turn, status: Status, usage: Usage, mode: FinishMode, *, text: str,
                error: dict[str, str] | None = None, thinking: str = "") -> WorkerResult:  # fmt: skip
        """Write the end of the turn. A refusal says who won: a cancel that landed meanwhile
        was accepted, so a completion, failure or lost worker's finish turns into a cancel."""
        renderer = self.renderers[turn.kind]
        at = self.store.now()
        end = TurnEnd(status, usage, text, thinking, error, finished_at=at)
        closing = Closing(renderer.on_end(turn, end), renderer.ledger(turn, end), renderer.closing_items(turn, end))
        try:
            finished = self.turns.finish(turn, status, closing, usage=usage, mode=mode, error=error, at=at)
        except CommitRejected as e:
            old = e.old
            if isinstance(mode, LostLease) and status is not Status.CANCELLED and old and old.cancel_requested:
                return self._settle_unclaimable(old)
            if isinstance(mode, MyLease) and status is not Status.CANCELLED:
                return self._stopped(turn, old, usage, text=text, thinking=thinking)
            return WorkerResult.LOST_RACE
        if self.on_finished is not None:
            try:
                self.on_finished(finished, end)
            except Exception:  # the turn has ended; a failed notification must not undo that
                log.exception("after-finish hook failed for turn %s", turn.id)
        return WorkerResult(status.value)

    # -- running a claimed turn

    def run(self, turn: Turn, remaining_ms: Callable[[], int] | None = None) -> WorkerResult:
        """Stream the model into the turn. Ends ``incomplete`` when the model has more to say
        past the request's ``max_output_tokens`` (the crossing chunk is cut at the limit), and
        ``failed`` (``max_duration``) shortly before the host's deadline (``remaining_ms``),
        so a turn always gets its terminal event and state. A heartbeat keeps the lease (and
        the cancel check) alive while the model is quiet."""
        active = ActiveTurn(self.turns, turn, self.owner, self.lease_ms, self.flush_ms, self.store.clock)
        stream = self.model_factory(turn).stream(str(turn.input.get("prompt", "")))
        try:
            with Heartbeat(active, self.heartbeat_s):
                try:
                    stop = self._stream(active, stream, remaining_ms)
                    active.checkpoint()
                finally:
                    close = getattr(stream, "close", None)
                    if close:
                        close()  # best-effort stop of the in-flight model call
        except CommitRejected as refused:
            return self._stopped(active.turn, refused.old, active.usage, text=active.text, thinking=active.thinking)
        except Exception as exc:  # the model failed: the turn fails, unless a cancel won first
            log.exception("turn %s failed", turn.id)
            stop = (Status.FAILED, {"code": "model_error", "message": f"The model failed: {type(exc).__name__}"})
        return self._finish(active.turn, stop[0], active.usage, MyLease(self.owner), text=active.text,
                            thinking=active.thinking, error=stop[1])  # fmt: skip

    def _stream(self, active: ActiveTurn, stream: Iterator[Chunk], remaining_ms: Callable[[], int] | None) -> Stop:
        renderer = self.renderers[active.turn.kind]
        limit = active.turn.input.get("max_output_tokens")
        start = renderer.on_start(active.turn)
        if start:
            active.emit(start)
        for chunk in stream:
            text = chunk.text
            if isinstance(limit, int) and chunk.kind == "text" and text:
                room = limit - active.produced_tokens
                if room <= 0:  # more output than the caller allowed
                    return Status.INCOMPLETE, None
                text = first_tokens(text, room)
            active.emit(renderer.on_delta(active.turn, text, chunk.kind), text, chunk.kind)
            if text != chunk.text:
                return Status.INCOMPLETE, None
            if remaining_ms is not None and remaining_ms() < self.stop_margin_ms:
                return Status.FAILED, MAX_DURATION_ERROR
        return Status.COMPLETED, None

    def _stopped(self, turn: Turn, old: Turn | None, usage: Usage, *, text: str, thinking: str) -> WorkerResult:
        """A commit or finish under my lease was refused. If it was a cancel, end the turn cancelled."""
        if old is None or old.terminal or old.lease_owner != self.owner or not old.cancel_requested:
            return WorkerResult.LEASE_LOST
        flagged = turn.replace(
            cancel_requested_at=old.cancel_requested_at,
            cancel_reason=old.cancel_reason,
            cancel_actor=old.cancel_actor,
            cancel_source=old.cancel_source,
        )
        return self._finish(flagged, Status.CANCELLED, usage, MyLease(self.owner), text=text, thinking=thinking)
