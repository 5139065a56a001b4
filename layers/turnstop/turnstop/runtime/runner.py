"""Running one turn: claim, stream the model through ``emit``/``checkpoint``, finish.

Every commit is the cancel check (see ``Store.commit``). When it fails the old head says
why: a cancel was requested (write ``…cancelled`` and the final state together, bill
nothing) or the lease is gone (stop without writing). A redelivered message for a turn
whose worker died finalizes it instead of running it again.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from turnstop.core.clock import SYSTEM_CLOCK, Clock
from turnstop.core.events import PendingEvent
from turnstop.core.turn import Status, Turn, Usage, final_status_after_lost_worker
from turnstop.runtime.model import Model, count_tokens
from turnstop.runtime.renderer import Outcome, Renderer, closing_items, committed_text, renderer_for
from turnstop.store.dynamo import MAX_EVENTS_PER_COMMIT, CommitRejected, LedgerEntry, Store

log = logging.getLogger(__name__)

# Credits per token, for the ledger's debit of a completed turn.
CREDITS_PER_TOKEN = Decimal("0.001")


class TurnStopped(Exception):
    """A commit was refused; ``old`` is the head it was refused against."""

    def __init__(self, old: Turn | None) -> None:
        super().__init__(old.id if old else "missing")
        self.old = old


class LeaseHeld(Exception):
    """Another live worker holds the turn; the message should come back later."""


@dataclass
class ActiveTurn:
    """The handle turn code uses. ``emit`` buffers, ``checkpoint`` publishes (and checks)."""

    store: Store
    turn: Turn
    owner: str
    lease_ms: int
    flush_ms: int
    clock: Clock = SYSTEM_CLOCK

    def __post_init__(self) -> None:
        # The model's thread and the heartbeat both commit; commits must not interleave.
        self._lock = threading.RLock()
        self.stopped: TurnStopped | None = None
        self._pending: list[PendingEvent] = []
        self._pending_text: list[tuple[str, str]] = []
        self._last_commit = self.clock.now_ms()
        self.text = ""
        self.thinking = ""
        self.output_tokens = 0
        self.commits = 0

    @property
    def usage(self) -> Usage:
        return Usage(self.turn.usage.input_tokens, self.output_tokens)

    @property
    def produced_tokens(self) -> int:
        """Output tokens emitted so far, committed or still buffered."""
        return self.output_tokens + count_tokens("".join(t for k, t in self._pending_text if k == "text"))

    def emit(self, events: list[PendingEvent], text: str = "", kind: str = "text") -> None:
        with self._lock:
            if self.stopped is not None:
                raise self.stopped
            self._pending.extend(events)
            if text:
                self._pending_text.append((kind, text))
            now = self.clock.now_ms()
            due = now - self._last_commit >= self.flush_ms
            if due or len(self._pending) >= MAX_EVENTS_PER_COMMIT or now - self._last_commit >= self.lease_ms // 3:
                self.checkpoint()

    def checkpoint(self) -> None:
        """Commit what is buffered (or just renew the lease): one conditional write."""
        with self._lock:
            if self.stopped is not None:
                raise self.stopped
            add_text = "".join(t for k, t in self._pending_text if k == "text")
            add_thinking = "".join(t for k, t in self._pending_text if k == "thinking")
            usage = Usage(self.turn.usage.input_tokens, self.output_tokens + count_tokens(add_text))
            try:
                seq = self.store.commit(self.turn, self.owner, self._pending, usage, self.lease_ms)
            except CommitRejected as e:
                self.stopped = TurnStopped(e.old)
                raise self.stopped from None
            self.turn = _replace(self.turn, seq=seq, usage=usage)
            self.text += add_text
            self.thinking += add_thinking
            self.output_tokens = usage.output_tokens
            self._pending, self._pending_text = [], []
            self._last_commit = self.clock.now_ms()
            self.commits += 1

    def heartbeat(self) -> None:
        """Renew the lease (and publish anything buffered) when the model has been quiet for
        a third of it, so a live worker's turn never looks lost; this commit is a cancel
        check too, and a refusal stops the turn at the model's next step."""
        with self._lock:
            if self.stopped is None and self.clock.now_ms() - self._last_commit >= self.lease_ms // 3:
                try:
                    self.checkpoint()
                except TurnStopped:
                    pass  # recorded in self.stopped; the model's thread raises it


class Heartbeat:
    """A thread that calls ``ActiveTurn.heartbeat`` every ``interval_s`` until stopped."""

    def __init__(self, active: ActiveTurn, interval_s: float) -> None:
        self._active = active
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{active.turn.id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._active.heartbeat()
            except Exception:  # a failed renewal is retried next beat; the lease has slack
                log.exception("heartbeat of turn %s failed", self._active.turn.id)


_TOKEN = re.compile(r"\s*\S+\s*")


def first_tokens(text: str, n: int) -> str:
    """The first ``n`` tokens of ``text`` (whitespace-separated, as count_tokens counts)."""
    if count_tokens(text) <= n:
        return text
    return "".join(m.group(0) for _, m in zip(range(n), _TOKEN.finditer(text), strict=False))


def _replace(turn: Turn, **kw: object) -> Turn:
    return Turn(**{**turn.__dict__, **kw})


def ledger_for(status: Status, usage: Usage) -> list[LedgerEntry]:
    """Completed turns (and incomplete ones, cut at the caller's own max_output_tokens) are
    billed once; cancelled and failed ones record usage and debit nothing."""
    billed = status in (Status.COMPLETED, Status.INCOMPLETE)
    entries = [LedgerEntry("usage", {**usage.to_item(), "status": status.value, "billed": billed})]
    if billed:
        credits = (CREDITS_PER_TOKEN * usage.total_tokens).quantize(Decimal("0.000001"))
        entries.append(LedgerEntry("debit", {"credits": str(credits)}))
    return entries


class TurnRunner:
    def __init__(
        self,
        store: Store,
        model_factory: Callable[[Turn], Model],
        *,
        lease_ms: int,
        flush_ms: int = 0,
        renderer_lookup: Callable[[str], Renderer] = renderer_for,
        owner: str | None = None,
        stop_margin_ms: int = 10_000,
        heartbeat_s: float | None = None,
    ) -> None:
        self.store = store
        self.model_factory = model_factory
        self.lease_ms = lease_ms
        self.flush_ms = flush_ms
        self.renderer_lookup = renderer_lookup
        self.owner = owner or f"w-{uuid.uuid4().hex[:12]}"
        self.stop_margin_ms = stop_margin_ms
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else lease_ms / 6000

    # -- entry point for one queue message

    def handle(self, turn_id: str, remaining_ms: Callable[[], int] | None = None) -> str:
        """Run or settle the turn. Returns what happened; raises LeaseHeld to be retried."""
        try:
            turn = self.store.claim(turn_id, self.owner, self.lease_ms)
        except CommitRejected as e:
            return self._settle_unclaimable(e.old)
        return self.run(turn, remaining_ms)

    def _settle_unclaimable(self, old: Turn | None) -> str:
        if old is None:
            return "missing"
        now = self.store.now()
        if old.stored_status is Status.QUEUED and old.cancel_requested:
            # Cancelled before any work started: record it so every reader sees the terminal event.
            return self._finalize_quietly(old, Status.CANCELLED, old.usage, text="", owner=None)
        if old.stored_status is Status.RUNNING:
            if old.lease_expired(now):
                status = final_status_after_lost_worker(old)
                error = None if status is Status.CANCELLED else {"code": "worker_lost", "message": "The worker running this turn stopped responding"}
                return self._finalize_quietly(
                    old, status, old.usage, text=self._committed_text(old), lost_lease=old.lease_expires_at, error=error
                )
            raise LeaseHeld(old.id)
        return "already_final"

    def _committed_text(self, turn: Turn) -> str:
        return committed_text(self.store.read_events(turn.id, 0, turn.seq))

    def _finalize_quietly(
        self,
        turn: Turn,
        status: Status,
        usage: Usage,
        *,
        text: str,
        owner: str | None = None,
        lost_lease: int | None = None,
        error: dict[str, str] | None = None,
        thinking: str = "",
    ) -> str:
        renderer = self.renderer_lookup(turn.kind)
        at = self.store.now()
        outcome = Outcome(status, usage, text, thinking, error, finished_at=at)
        try:
            self.store.finalize(
                turn,
                status,
                renderer.on_end(turn, outcome),
                usage=usage,
                owner=owner,
                lost_lease_expires_at=lost_lease,
                error=error,
                ledger=ledger_for(status, usage),
                extra_items=closing_items(renderer, turn, outcome),
                at=at,
            )
        except CommitRejected as e:
            old = e.old
            if lost_lease is not None and status is not Status.CANCELLED and old and old.cancel_requested:
                # A cancel landed between our look at the dead worker's turn and this write:
                # it was accepted, so the turn ends cancelled.
                return self._settle_unclaimable(old)
            return "lost_race"
        return status.value

    # -- running a claimed turn

    def run(self, turn: Turn, remaining_ms: Callable[[], int] | None = None) -> str:
        """Stream the model into the turn. Ends ``incomplete`` when the model has more to say
        past the request's ``max_output_tokens`` (the crossing chunk is cut at the limit), and
        ``failed`` (``max_duration``) shortly before the host's deadline (``remaining_ms``),
        so a turn always gets its terminal event and state. A heartbeat keeps the lease (and
        the cancel check) alive while the model is quiet."""
        renderer = self.renderer_lookup(turn.kind)
        active = ActiveTurn(self.store, turn, self.owner, self.lease_ms, self.flush_ms, self.store.clock)
        model = self.model_factory(turn)
        stream = model.stream(str(turn.input.get("prompt", "")))
        limit = turn.input.get("max_output_tokens")
        stop: tuple[Status, dict[str, str] | None] = (Status.COMPLETED, None)
        try:
            with Heartbeat(active, self.heartbeat_s):
                try:
                    start = renderer.on_start(active.turn)
                    if start:
                        active.emit(start)
                    for chunk in stream:
                        text = chunk.text
                        if isinstance(limit, int) and chunk.kind == "text" and text:
                            room = limit - active.produced_tokens
                            if room <= 0:  # more output than the caller allowed
                                stop = (Status.INCOMPLETE, None)
                                break
                            text = first_tokens(text, room)
                        active.emit(renderer.on_delta(active.turn, text, chunk.kind), text, chunk.kind)
                        if text != chunk.text:
                            stop = (Status.INCOMPLETE, None)
                            break
                        if remaining_ms is not None and remaining_ms() < self.stop_margin_ms:
                            stop = (Status.FAILED, {"code": "max_duration", "message": "The turn ran out of time"})
                            break
                    active.checkpoint()
                finally:
                    close = getattr(stream, "close", None)
                    if close:
                        close()  # best-effort stop of the in-flight model call
        except TurnStopped as stopped:
            return self._stopped(active, stopped.old)
        except Exception as exc:  # the model failed: the turn fails, unless a cancel won first
            log.exception("turn %s failed", turn.id)
            error = {"code": "model_error", "message": f"The model failed: {type(exc).__name__}"}
            return self._end(active, Status.FAILED, error)
        return self._end(active, *stop)

    def _end(self, active: ActiveTurn, status: Status, error: dict[str, str] | None) -> str:
        renderer = self.renderer_lookup(active.turn.kind)
        at = self.store.now()
        outcome = Outcome(status, active.usage, active.text, active.thinking, error, finished_at=at)
        try:
            self.store.finalize(
                active.turn,
                status,
                renderer.on_end(active.turn, outcome),
                usage=active.usage,
                owner=self.owner,
                error=error,
                ledger=ledger_for(status, active.usage),
                extra_items=closing_items(renderer, active.turn, outcome),
                at=at,
            )
            return status.value
        except CommitRejected as e:
            return self._stopped(active, e.old)

    def _stopped(self, active: ActiveTurn, old: Turn | None) -> str:
        """A commit or finish was refused. If it was a cancel, end the turn cancelled."""
        if old is None or old.terminal or old.lease_owner != self.owner:
            return "lease_lost"
        if old.cancel_requested:
            turn = _replace(
                active.turn,
                cancel_requested_at=old.cancel_requested_at,
                cancel_reason=old.cancel_reason,
                cancel_actor=old.cancel_actor,
                cancel_source=old.cancel_source,
            )
            return self._finalize_quietly(
                turn, Status.CANCELLED, active.usage, text=active.text, thinking=active.thinking, owner=self.owner
            )
        return "lease_lost"
