"""What the fake saw and did for each request, with ``time.monotonic()`` timestamps.

Every request gets a ``RequestRecord`` as soon as its body is read. The serving thread fills it
in as the answer goes out; tests read it with ``Records.wait_for`` or
``RequestRecord.wait_disconnected`` (polling a condition variable with a deadline, never a
sleep).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(eq=False)
class RequestRecord:
    """One request and its answer.

    - ``client``: the client's (host, port); requests on one keep-alive connection share it.
    - ``received_at``: the request's body was read; ``headers_sent_at``: the status line and
      headers were written; ``first_token_at``: the first token was written.
    - ``tokens_sent``: tokens written to the client, ``token_times`` when each was written (a
      benchmark counts those after a cancel was acknowledged). ``tokens_after_disconnect``: tokens the fake
      generated after the client had gone (a token whose write failed; for a background response,
      every token generated while no reader was attached after this request's stream left).
    - ``disconnected_at``: the client went away before the answer was complete (noticed by
      polling the socket for EOF while silent, or by a failed write).
    - ``finished_at``: the answer was complete (or the fake gave up on it); ``status``: the HTTP
      status sent (None while in prefill, or when the client left first).
    - ``cancelled_at`` (Responses): the response this request created was cancelled;
      ``tokens_after_cancel``: tokens it generated after that (0: generation stops at once).
    - ``served_at``: the serving thread let go of the request (nothing more is written for it).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw_body: bytes = field(repr=False)
    received_at: float
    client: tuple[str, int] | None = None  # the client's address: one per connection
    model: str | None = None
    protocol: str | None = None
    status: int | None = None
    response_id: str | None = None
    headers_sent_at: float | None = None
    first_token_at: float | None = None
    tokens_sent: int = 0
    token_times: list[float] = field(default_factory=list, repr=False)
    tokens_after_disconnect: int = 0
    tokens_after_cancel: int = 0
    disconnected_at: float | None = None
    finished_at: float | None = None
    cancelled_at: float | None = None
    served_at: float | None = None
    outcome: str | None = None  # completed, length, failed, stalled, closed, disconnected, cancelled, error
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)

    @property
    def authorization(self) -> str | None:
        return self.header("authorization")

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    def update(self, **changes: Any) -> None:
        """Set fields and wake anyone waiting on this record's server."""
        with self._cond:
            for key, value in changes.items():
                setattr(self, key, value)
            self._cond.notify_all()

    def token_sent(self) -> None:
        """One more token was written to the client, now."""
        with self._cond:
            now = time.monotonic()
            self.tokens_sent += 1
            self.token_times.append(now)
            if self.first_token_at is None:
                self.first_token_at = now
            self._cond.notify_all()

    def mark_disconnected(self) -> None:
        with self._cond:
            if self.disconnected_at is None and self.finished_at is None:
                self.disconnected_at = time.monotonic()
                self.outcome = self.outcome or "disconnected"
            self._cond.notify_all()

    def wait(self, predicate: Callable[[RequestRecord], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    def wait_disconnected(self, timeout: float = 5.0) -> bool:
        return self.wait(lambda r: r.disconnected_at is not None, timeout)

    def wait_served(self, timeout: float = 5.0) -> bool:
        return self.wait(lambda r: r.served_at is not None, timeout)

    def wait_finished(self, timeout: float = 5.0) -> bool:
        return self.wait(lambda r: r.finished_at is not None or r.disconnected_at is not None, timeout)


class Records:
    """The records of one server, in arrival order, sharing one condition variable."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._records: list[RequestRecord] = []

    def new(self, **fields: Any) -> RequestRecord:
        record = RequestRecord(**fields, _cond=self._cond)
        with self._cond:
            self._records.append(record)
            self._cond.notify_all()
        return record

    def all(self) -> list[RequestRecord]:
        with self._cond:
            return list(self._records)

    def for_model(self, model: str) -> list[RequestRecord]:
        return [r for r in self.all() if r.model == model]

    def wait_for(self, predicate: Callable[[list[RequestRecord]], T], timeout: float = 5.0) -> T:
        """Wait until ``predicate(records)`` is truthy and return its value; ``TimeoutError``
        (naming the records) after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate(list(self._records))
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s; records: {self._records!r}")
                self._cond.wait(remaining)
