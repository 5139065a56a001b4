"""Per-function concurrency, as Lambda counts it.

Every invocation of a function (an HTTP request, a stream for its whole life, a batch from a
queue, a scheduled run) takes one of the function's slots until it ends. A function has as many
slots as its ``ReservedConcurrentExecutions``, or ``TURNSTOP_LOCAL_CONCURRENCY`` (default 64) when
the template reserves none. When every slot is taken an invocation is throttled rather than
queued, as Lambda does: the caller gets :class:`Throttled` at once (or after the short wait it
asked for) and answers the way its AWS counterpart would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from turnstop_local.knobs import CONCURRENCY, number_setting

__all__ = ["DEFAULT_CONCURRENCY", "ConcurrencyLimit", "Throttled", "unreserved_concurrency"]

DEFAULT_CONCURRENCY = 64
_MAX_CONCURRENCY = 10_000


def unreserved_concurrency(environ: Mapping[str, str] | None = None) -> int:
    """The limit of a function without reserved concurrency: ``$TURNSTOP_LOCAL_CONCURRENCY`` or 64."""
    return int(number_setting(CONCURRENCY, DEFAULT_CONCURRENCY, minimum=1, maximum=_MAX_CONCURRENCY, environ=environ))


class Throttled(RuntimeError):
    """Every concurrency slot of the function is taken (Lambda's ``TooManyRequestsException``)."""

    def __init__(self, function_name: str, limit: int, reserved: bool) -> None:
        self.function_name = function_name
        self.limit = limit
        self.reserved = reserved
        super().__init__(f"{function_name} is at its concurrency limit ({limit}{' reserved' if reserved else ''})")

    @property
    def reason(self) -> str:
        """Lambda's ``Reason`` for the throttle."""
        if self.reserved:
            return "ReservedFunctionConcurrentInvocationLimitExceeded"
        return "ConcurrentInvocationLimitExceeded"


class ConcurrencyLimit:
    """A counter of running invocations with a ceiling; ``acquire`` never waits unboundedly by default."""

    def __init__(self, limit: int) -> None:
        self.limit = max(0, int(limit))
        self._in_use = 0
        self._changed = threading.Condition(threading.Lock())

    @property
    def in_use(self) -> int:
        with self._changed:
            return self._in_use

    def acquire(self, timeout: float | None = 0.0) -> bool:
        """Take a slot; wait up to ``timeout`` seconds for one (None: until one frees). False if none."""
        if self.limit == 0:
            return False  # reserved at 0: nothing ever runs, no use waiting
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        with self._changed:
            while self._in_use >= self.limit:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(remaining)
            self._in_use += 1
            return True

    def release(self) -> None:
        with self._changed:
            if self._in_use <= 0:
                raise RuntimeError("released a concurrency slot that was not taken")
            self._in_use -= 1
            self._changed.notify()
