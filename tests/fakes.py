"""Test doubles shared by every tier."""

from __future__ import annotations

import threading


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
