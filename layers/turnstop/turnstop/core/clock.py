"""Clocks: every time in turnstop is integer epoch milliseconds, read from an injectable clock."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


SYSTEM_CLOCK = SystemClock()


def iso(ms: int | None) -> str | None:
    """RFC 3339 UTC with a Z, as the dialects print times."""
    if ms is None:
        return None
    secs, rem = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{rem:03d}Z"
