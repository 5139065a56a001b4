"""Clocks: every time in turnstop is integer epoch milliseconds, read from an injectable clock."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FakeClock:
    """A clock tests move by hand, so grace, leases and expiry need no sleeping."""

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:
        self._now = start_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0, ms: int = 0) -> None:
        with self._lock:
            self._now += int(seconds * 1000) + ms


SYSTEM_CLOCK = SystemClock()


def iso(ms: int | None) -> str | None:
    """RFC 3339 UTC with a Z, as the dialects print times."""
    if ms is None:
        return None
    secs, rem = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{rem:03d}Z"
