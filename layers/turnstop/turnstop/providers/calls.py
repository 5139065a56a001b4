"""The common part of every streaming provider's ``ModelCall``.

``StreamingCall`` owns, for one call:

- **the abort flag.** ``abort()`` (any thread, idempotent) sets it, shuts the current attempt's
  ``AbortableTransport`` (see ``transport.py``: every phase, from connecting to mid-stream) and
  runs the provider's ``_on_abort`` hook (the Responses provider's server-side cancel). The
  iterating thread then raises ``CallAborted``, never an ``UpstreamError``; a backoff wait
  between attempts is interrupted too.
- **the timeouts,** without a watchdog thread: the transport bounds each socket read by
  ``_read_deadline()``; until the first chunk (text or thinking) that is the attempt's start +
  ``route.first_byte_timeout_s``, then the last upstream event + ``route.idle_timeout_s``. The
  connect is bounded by ``route.connect_timeout_s``. A passed deadline ends the call with
  ``UpstreamError(TIMEOUT)``.
- **retries,** only before the first chunk: connect failures, a connection closed before any
  answer, 429 (honouring ``Retry-After``), 5xx, and timeouts before any byte arrived; exponential
  backoff with jitter, each attempt on a fresh transport, all within ``route.retry_budget_s``
  from the first attempt. After the first chunk nothing is retried.
- **safe errors:** a provider maps its SDK's exceptions with ``_classify`` to an
  ``UpstreamError`` whose message names the status and the kind, never a key or the upstream's
  body; the error is raised without the SDK's exception chained to it.

A provider subclasses it and implements ``_attempt(transport)``: a generator that sends the
request through ``transport`` and yields ``Chunk``s, calling ``_alive()`` on every upstream event
and setting ``finish_reason`` / ``usage`` as they arrive.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Generator, Iterator
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from turnstop.providers.base import CallAborted, Chunk, ProviderUsage, UpstreamError, UpstreamErrorKind
from turnstop.providers.config import Route

if TYPE_CHECKING:
    from turnstop.providers.transport import AbortableTransport

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 4.0


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``-style seconds; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN guard


def status_error(provider: str, status: int, *, retry_after: float | None = None) -> UpstreamError:
    """The error for an HTTP status answer: its kind from the status, a message without the body."""
    if status == 429:
        kind = UpstreamErrorKind.RATE_LIMITED
    elif status >= 500:
        kind = UpstreamErrorKind.SERVER
    elif status in (408,):
        kind = UpstreamErrorKind.TIMEOUT
    else:
        kind = UpstreamErrorKind.REJECTED
    return UpstreamError(
        kind, f"{provider}: the upstream answered HTTP {status} ({kind})", status=status, retry_after=retry_after
    )


class StreamingCall:
    """A ``ModelCall`` that streams from an upstream through an abortable transport."""

    provider = "upstream"  # the name in error messages

    def __init__(self, route: Route) -> None:
        self.route = route
        self.finish_reason: str | None = None
        self.usage: ProviderUsage | None = None
        self.attempts = 0
        self._aborted = threading.Event()
        self._lock = threading.Lock()
        self._transport: AbortableTransport | None = None
        self._iterated = False
        self._first_chunk = False
        self._phase_start = time.monotonic()
        self._last_event = self._phase_start

    # -- the ModelCall interface ----------------------------------------------------------------
    def __iter__(self) -> Iterator[Chunk]:
        if self._iterated:
            raise RuntimeError("a model call can be iterated once")
        self._iterated = True
        return self._run()

    def abort(self) -> None:
        if self._aborted.is_set():
            return
        self._aborted.set()
        self._shut()

    def _shut(self) -> None:
        """Shut the current attempt's connection and run the provider's abort hook (idempotent)."""
        with self._lock:
            transport = self._transport
        if transport is not None:
            transport.abort()
        try:
            self._on_abort()
        except Exception:  # best effort: the connection is already shut
            log.warning("%s: the abort hook failed", self.provider, exc_info=False)

    @property
    def aborted(self) -> bool:
        return self._aborted.is_set()

    # -- for providers ---------------------------------------------------------------------------
    def _attempt(self, transport: AbortableTransport) -> Generator[Chunk, None, None]:
        raise NotImplementedError

    def _classify(self, exc: BaseException) -> UpstreamError | None:
        """The provider's reading of its SDK's exception (status answers, error events); None: generic."""
        return None

    def _on_abort(self) -> None:
        """Called once by ``abort()`` after the connection is shut (any thread; must not block)."""

    def _alive(self) -> None:
        """An upstream event arrived (the idle timeout counts from the last one)."""
        self._last_event = time.monotonic()

    def _restart_wait(self) -> None:
        """Start the first-byte clock again (a provider resuming a stream on a new request)."""
        if not self._first_chunk:
            self._phase_start = time.monotonic()
        self._last_event = time.monotonic()

    def _new_transport(self) -> AbortableTransport:
        from turnstop.providers.transport import AbortableTransport

        return AbortableTransport(read_deadline=self._read_deadline)

    # -- internals -------------------------------------------------------------------------------
    def _read_deadline(self) -> float:
        if not self._first_chunk:
            return self._phase_start + self.route.first_byte_timeout_s
        return self._last_event + self.route.idle_timeout_s

    def _check_abort(self) -> None:
        if self._aborted.is_set():
            raise CallAborted()

    def _open_transport(self) -> AbortableTransport:
        transport = self._new_transport()
        with self._lock:
            self._transport = transport
        if self._aborted.is_set():  # an abort that came while the transport was being built
            transport.abort()
        return transport

    def _run(self) -> Iterator[Chunk]:
        budget_end = time.monotonic() + self.route.retry_budget_s
        while True:
            self._check_abort()
            self.attempts += 1
            self._phase_start = self._last_event = time.monotonic()
            transport = self._open_transport()
            failure: UpstreamError | None = None
            attempt = self._attempt(transport)
            try:
                for chunk in attempt:
                    self._check_abort()
                    if not self._first_chunk:
                        self._first_chunk = True
                    self._alive()
                    yield chunk
                self._check_abort()
                return
            except CallAborted:
                raise
            except UpstreamError as e:
                failure = e
            except Exception as e:  # the SDK's: read it here, raise ours outside the handler
                if self._aborted.is_set():
                    failure = None
                else:
                    failure = self._failure(e, transport)
            finally:
                with contextlib.suppress(Exception):
                    attempt.close()  # the SDK's stream, at once (not whenever it is collected)
                with contextlib.suppress(Exception):
                    transport.close()
            if failure is None or self._aborted.is_set():
                raise CallAborted()
            delay = self._retry_delay(failure, transport, budget_end)
            if delay is None:
                failure.__cause__ = failure.__context__ = None  # never the SDK's exception (it holds the body)
                raise failure
            log.info("%s: attempt %d failed (%s); retrying in %.2fs", self.provider, self.attempts, failure.kind, delay)
            if self._aborted.wait(delay):
                raise CallAborted()

    def _failure(self, exc: BaseException, transport: AbortableTransport) -> UpstreamError:
        if transport.timed_out:
            return self._timeout_error(transport)
        specific = self._classify(exc)
        if specific is not None:
            return specific
        if not transport.connected:
            return UpstreamError(UpstreamErrorKind.CONNECT, f"{self.provider}: cannot connect to the upstream")
        if transport.bytes_received == 0:
            return UpstreamError(
                UpstreamErrorKind.CONNECT, f"{self.provider}: the upstream closed the connection without answering"
            )
        return self._bad_response("the upstream's answer broke off or could not be read")

    def _timeout_error(self, transport: AbortableTransport) -> UpstreamError:
        if not transport.connected:
            what = f"could not connect within {self.route.connect_timeout_s:g}s"
        elif not self._first_chunk:
            what = f"no first token within {self.route.first_byte_timeout_s:g}s"
        else:
            what = f"the stream was idle for {self.route.idle_timeout_s:g}s"
        return UpstreamError(UpstreamErrorKind.TIMEOUT, f"{self.provider}: {what}")

    def _bad_response(self, what: str) -> UpstreamError:
        return UpstreamError(UpstreamErrorKind.BAD_RESPONSE, f"{self.provider}: {what}")

    def _retry_delay(self, failure: UpstreamError, transport: AbortableTransport, budget_end: float) -> float | None:
        """How long to wait before the next attempt; None: give up with ``failure``."""
        if self._first_chunk or not failure.retryable:
            return None
        if failure.kind is UpstreamErrorKind.TIMEOUT and transport.bytes_received:
            return None  # the upstream answered and then went silent: not a transient connect problem
        delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(self.attempts - 1, 16)) * random.uniform(0.5, 1.0)
        if failure.retry_after is not None:
            delay = max(delay, failure.retry_after)
        if time.monotonic() + delay >= budget_end:
            return None
        return delay


def usage_from(input_tokens: Any, output_tokens: Any, cached: Any = None, reasoning: Any = None) -> ProviderUsage:
    """A ``ProviderUsage`` from an upstream's numbers (missing or odd values count as 0 / None)."""

    def count(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    return ProviderUsage(
        input_tokens=count(input_tokens) or 0,
        output_tokens=count(output_tokens) or 0,
        cached_tokens=count(cached),
        reasoning_tokens=count(reasoning),
        estimated=False,
    )
