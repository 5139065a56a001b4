"""The keeper: the one Python thread that writes a running turn to the store.

Three jobs, each at its own cadence, none of them on the model's Python thread:
- make the turn durable: every ``flush_ms`` (or sooner once ``flush_bytes`` are waiting) it
  publishes what was emitted as one chunk and moves the head over it (two small writes);
- notice a cancel: every ``check_ms`` without such a write it reads the head's flag (one small
  read); a publish or a lease renewal is a cancel check too, by its condition;
- end the turn: when the model is done, when the flag is seen, or near the host's deadline, it
  writes the last events and the terminal state together. Completion is conditional on the
  flag being absent, so a cancel accepted with 202 always ends cancelled.
A turn with its caller's own deadline (``deadline_at``, from ``Turnstop-Max-Duration``) is
cancelled by the keeper itself once it passes, model silent or not: the same one conditional
cancel write as any other (source ``deadline``), then the usual cancelled ending.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from turnstop.core.errors import CommitRejected, Retryable
from turnstop.core.events import Event
from turnstop.core.turn import CancelRequest, Status, Turn, TurnEnd, Usage
from turnstop.platform.settings import Settings
from turnstop.runtime.active import ActiveTurn, ModelEnd, Snapshot
from turnstop.runtime.renderer import Renderer
from turnstop.store import Store
from turnstop.store.finish import Closing, MyLease

log = logging.getLogger(__name__)

# What the provider used for a turn: (turn, usage, estimated, output) → the record stored on it.
UpstreamRecord = Callable[[Turn, Usage, bool, str], dict[str, Any] | None]

MAX_DURATION_ERROR = {"code": "max_duration", "message": "The turn ran out of time"}
# How the runtime cancels a turn that ran past its caller's deadline (or was queued past it).
DEADLINE_CANCEL = CancelRequest(reason="The turn ran past its deadline", actor="turnstop", source="deadline")


@dataclass(frozen=True)
class Cadence:
    """How often the keeper writes and looks (milliseconds)."""

    flush_ms: int = 2000
    flush_bytes: int = 16_384
    check_ms: int = 200
    lease_ms: int = 30_000
    consistent_check: bool = False
    stop_margin_ms: int = 10_000

    @classmethod
    def from_settings(cls, settings: Settings) -> Cadence:
        return cls(
            flush_ms=settings.flush_ms,
            flush_bytes=settings.flush_bytes,
            check_ms=settings.cancel_check_ms,
            lease_ms=settings.lease_ms,
            consistent_check=settings.cancel_check_consistent,
        )


@dataclass
class Ending:
    """How the turn ended, for whoever waits on it."""

    status: Status | None  # None: another writer ended it (lost race, lost lease)
    turn: Turn | None = None
    end: TurnEnd | None = None
    cancelled_by_flag: Turn | None = None


class Keeper:
    def __init__(
        self,
        store: Store,
        active: ActiveTurn,
        renderer: Renderer,
        owner: str,
        cadence: Cadence,
        remaining_ms: Callable[[], int] | None = None,
        upstream: UpstreamRecord | None = None,
    ) -> None:
        self.store = store
        self.upstream = upstream
        self.turns = store.turns
        self.active = active
        self.renderer = renderer
        self.owner = owner
        self.cadence = cadence
        self.remaining_ms = remaining_ms
        now = time.monotonic()
        self._last_publish = self._last_check = self._last_write = now
        self._closing: _Finishing | None = None

    # -- the loop

    def run(self) -> Ending:
        """Keep the turn until it ends. A store error is retried at the next tick; once no
        write has landed for a whole lease, the turn is someone else's to end (the sweeper
        finds the expired lease), so the keeper stops the model and lets go."""
        while True:
            self.active.wake.wait(self.cadence.check_ms / 1000)
            self.active.wake.clear()
            try:
                try:
                    ending = self._tick()
                except CommitRejected as refused:
                    ending = self._refused(refused.old)  # may write (a cancelled finish), may fail
            except Exception as error:
                level = logging.WARNING if isinstance(error, Retryable) else logging.ERROR
                log.log(level, "keeping turn %s failed; retrying", self.active.turn.id, exc_info=error)
                if time.monotonic() - self._last_write < self.cadence.lease_ms / 1000:
                    continue
                self.active.stop()
                ending = Ending(None)
            if ending is not None:
                return ending

    def _tick(self) -> Ending | None:
        now = time.monotonic()
        if self._closing is not None:  # a finish whose answer was lost: the very same finish again
            return self._write_finish(self._closing)
        if self.active.model_end is not None:
            return self._end(self.active.model_end)
        if self.active.turn.past_deadline(self.store.now()):
            return self._deadline()
        if self.remaining_ms is not None and self.remaining_ms() < self.cadence.stop_margin_ms:
            return self._end(ModelEnd(Status.FAILED, MAX_DURATION_ERROR))
        waiting = self.active.pending_bytes
        if waiting and (
            waiting >= self.cadence.flush_bytes or now - self._last_publish >= self.cadence.flush_ms / 1000
        ):
            self._publish(self.active.pending())
        elif now - self._last_check >= self.cadence.check_ms / 1000:
            flag = self.turns.cancel_flag(self.active.turn.id, consistent=self.cadence.consistent_check)
            self._last_check = now
            if flag is not None:
                return self._cancelled(flag)
        if now - self._last_write >= self.cadence.lease_ms / 3000:
            turn = self.active.turn
            self.turns.renew(turn.id, self.owner, turn.seq, self.cadence.lease_ms)
            self._last_write = self._last_check = time.monotonic()
        return None

    def _publish(self, snap: Snapshot) -> None:
        turn = self.active.turn
        self.turns.publish(
            turn.id,
            self.owner,
            snap.events,
            turn.seq,
            snap.usage,
            self.cadence.lease_ms,
            keep_until=int(turn.input.get("keep_until") or 0),
        )
        self.active.published(snap)
        self._last_publish = self._last_check = self._last_write = time.monotonic()

    # -- endings

    def _end(self, end: ModelEnd) -> Ending | None:
        """The model is done (or out of time): write what is left and the terminal state. A
        turn the model finished reports the provider's own usage where it gave one."""
        self.active.stop()
        snap = self.active.pending()
        if end.usage is not None and end.status in (Status.COMPLETED, Status.INCOMPLETE):
            u = end.usage
            usage = Usage(u.input_tokens, u.output_tokens, u.cached_tokens, u.reasoning_tokens)
            snap = replace(snap, usage=usage)
            upstream = self._upstream(snap.usage, u.estimated, snap.text)
        else:
            upstream = self._upstream_so_far(end.usage)
        return self._finish(self.active.turn, end.status, snap, end.error, upstream=upstream, asks=end.asks)

    def _upstream(self, usage: Usage, estimated: bool, output: str) -> dict[str, Any] | None:
        return None if self.upstream is None else self.upstream(self.active.turn, usage, estimated, output)

    def _upstream_so_far(self, given: Any = None) -> dict[str, Any] | None:
        """The provider's usage of a turn that did not finish: its own number when it gave one,
        else an estimate from everything it sent (marked ``estimated``)."""
        if given is not None:
            return self._upstream(
                Usage(given.input_tokens, given.output_tokens, given.cached_tokens, given.reasoning_tokens),
                given.estimated,
                "",
            )
        active = self.active
        ended = active.model_end.usage if active.model_end is not None else None
        if ended is not None:  # the model had finished, with the provider's count, when the end came
            return self._upstream_so_far(ended)
        sent = active.input_estimate if active.input_estimate is not None else active.turn.usage.input_tokens
        return self._upstream(Usage(sent, active.output_tokens), True, active.text + active.thinking)

    def _deadline(self) -> Ending | None:
        """The caller's deadline has passed: cancel the turn (one conditional write, as any
        cancel) and end it cancelled; a cancel that came first stands."""
        turn = self.active.turn
        _, head = self.turns.request_cancel(turn.id, tenant=turn.tenant, req=DEADLINE_CANCEL)
        return self._refused(head)

    def _cancelled(self, flag: Turn) -> Ending | None:
        """The flag is set: end the turn cancelled, at once, whatever the model is doing."""
        observed = self.store.now()
        self.active.stop()
        turn = self.active.turn.replace(
            cancel_requested_at=flag.cancel_requested_at,
            cancel_reason=flag.cancel_reason,
            cancel_actor=flag.cancel_actor,
            cancel_source=flag.cancel_source,
            cancel_seq=flag.cancel_seq,
        )
        # A dialect whose cancel answer shows the output ends with exactly the output committed
        # when the cancel was accepted; the others keep everything emitted until it was seen.
        at_acceptance = self.renderer.output_at_cancel_acceptance and self.active.live is None
        snap = self.active.pending(turn.seq if at_acceptance else None)
        upstream = self._upstream_so_far()
        return self._finish(turn, Status.CANCELLED, snap, None, flag=flag, observed_at=observed, upstream=upstream)

    def _refused(self, old: Turn | None) -> Ending | None:
        """A write under my lease was refused; the head says why. My own earlier write landed
        after all (its answer was lost, e.g. a timeout): catch up and go on. A cancel: end the
        turn cancelled. Anything else: the turn is no longer mine."""
        mine = old is not None and not old.terminal and old.lease_owner == self.owner
        if mine and old is not None:
            caught_up = old.seq > self.active.turn.seq
            if caught_up:
                self.active.durable_upto(old.seq)
                self._last_write = time.monotonic()
            if old.cancel_requested:
                return self._cancelled(old)
            if caught_up:
                return None
        self.active.stop()
        return Ending(None)

    def _finish(
        self,
        turn: Turn,
        status: Status,
        snap: Snapshot,
        error: dict[str, str] | None,
        flag: Turn | None = None,
        observed_at: int | None = None,
        upstream: dict[str, Any] | None = None,
        asks: dict[str, Any] | None = None,
    ) -> Ending | None:
        at = self.store.now()
        asked = asks if status is Status.COMPLETED else None  # a cancelled or failed turn asks nothing
        end = TurnEnd(status, snap.usage, snap.text, snap.thinking, error, finished_at=at, asks=asked)
        base = snap.events[-1].seq if snap.events else turn.seq
        closing = self.active.closing_seqs(base, self.renderer.on_end(turn, end))
        record = Closing(
            [*snap.events, *closing],
            self.renderer.ledger(turn, end),
            self.renderer.closing_items(turn, end),
            closing=len(closing),
            output=snap.text,
            upstream=upstream,
        )
        return self._write_finish(_Finishing(turn, status, record, end, closing, at, flag, observed_at))

    def _write_finish(self, f: _Finishing) -> Ending | None:
        """Write a finish. Until it lands or is refused, a failed attempt is repeated as it was
        (same events, same time), so a finish that landed though its answer was lost is
        recognised by the store as this one."""
        self._closing = f
        try:
            finished = self.turns.finish(
                f.turn,
                f.status,
                f.record,
                usage=f.end.usage,
                mode=MyLease(self.owner),
                error=f.end.error,
                at=f.at,
                writer=self.owner,
                observed_at=f.observed_at,
            )
        except CommitRejected as refused:
            self._closing = None
            if f.status is not Status.CANCELLED:
                return self._refused(refused.old)
            return Ending(None)
        self._closing = None
        if self.active.live is not None:
            self.active.live.put(f.closing)  # it has every emitted event already
        return Ending(f.status, finished, f.end, f.flag)


@dataclass(frozen=True)
class _Finishing:
    """A finish being written: what to write, and what to report once it landed."""

    turn: Turn
    status: Status
    record: Closing
    end: TurnEnd
    closing: list[Event]
    at: int
    flag: Turn | None
    observed_at: int | None = None  # a cancelled finish: when the flag was seen
