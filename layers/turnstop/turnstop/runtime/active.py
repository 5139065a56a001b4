"""The handle turn code writes through while a turn runs, and the heartbeat that keeps its
lease (and its cancel check) alive while the model is quiet."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from turnstop.core.clock import SYSTEM_CLOCK, Clock
from turnstop.core.errors import CommitRejected
from turnstop.core.events import PendingEvent
from turnstop.core.tokens import count_tokens
from turnstop.core.turn import Turn, Usage
from turnstop.store.turns import MAX_EVENTS_PER_COMMIT, Turns

log = logging.getLogger(__name__)


@dataclass
class ActiveTurn:
    """``emit`` buffers, ``checkpoint`` publishes (and checks). Once a commit is refused,
    ``stopped`` holds the refusal and every later call raises it."""

    turns: Turns
    turn: Turn
    owner: str
    lease_ms: int
    flush_ms: int
    clock: Clock = SYSTEM_CLOCK

    def __post_init__(self) -> None:
        # The model's thread and the heartbeat both commit; commits must not interleave.
        self._lock = threading.RLock()
        self.stopped: CommitRejected | None = None
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

    def _buffered(self, kind: str) -> str:
        return "".join(t for k, t in self._pending_text if k == kind)

    @property
    def produced_tokens(self) -> int:
        """Output tokens emitted so far, committed or still buffered."""
        return self.output_tokens + count_tokens(self._buffered("text"))

    def emit(self, events: list[PendingEvent], text: str = "", kind: str = "text") -> None:
        with self._lock:
            if self.stopped is not None:
                raise self.stopped
            self._pending.extend(events)
            if text:
                self._pending_text.append((kind, text))
            since = self.clock.now_ms() - self._last_commit
            if since >= self.flush_ms or len(self._pending) >= MAX_EVENTS_PER_COMMIT or since >= self.lease_ms // 3:
                self.checkpoint()

    def checkpoint(self) -> None:
        """Commit what is buffered (or just renew the lease): one conditional write."""
        with self._lock:
            if self.stopped is not None:
                raise self.stopped
            add_text, add_thinking = self._buffered("text"), self._buffered("thinking")
            usage = Usage(self.turn.usage.input_tokens, self.output_tokens + count_tokens(add_text))
            try:
                seq = self.turns.commit(self.turn, self.owner, self._pending, usage, self.lease_ms)
            except CommitRejected as refused:
                self.stopped = refused
                raise
            self.turn = self.turn.replace(seq=seq, usage=usage)
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
                except CommitRejected:
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
