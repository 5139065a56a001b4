"""A streaming invocation: the StreamHandler and its body iterator run on the function's thread,
the HTTP server reads the head and the chunks from a queue."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StreamEnded", "StreamHead", "StreamInvocation"]

log = logging.getLogger("turnstop_local.lambda")

_END = object()


class StreamEnded(RuntimeError):
    """The stream handler ended without a response."""


@dataclass
class StreamHead:
    """Status line and headers of a streamed response."""

    status_code: int
    headers: dict[str, str]
    cookies: list[str] = field(default_factory=list)


def _to_bytes(chunk: bytes | bytearray | memoryview | str) -> bytes:
    return chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)


class StreamInvocation:
    """A streaming invocation: the handler and its body iterator run on a pool thread, the caller
    reads the head and the chunks from a queue.

    Iterating on the pool thread keeps the function's concurrency taken for the stream's whole
    life (as in Lambda), and lets the body be closed on the thread that iterates it, which a
    generator requires. When the reader goes away (:meth:`cancel`), the body is closed the next
    time it yields, or before it is iterated at all; a body blocked inside ``next()`` decides for
    itself when that is.
    """

    def __init__(self, buffer: int = 64) -> None:
        self._items: queue.Queue[Any] = queue.Queue(maxsize=buffer)
        self._cancelled = threading.Event()
        self.done = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def run(self, call: Callable[[Any], Any], event: Any) -> None:
        try:
            try:
                response = call(event)
                head = StreamHead(
                    status_code=int(response.status_code),
                    headers={str(k): str(v) for k, v in dict(response.headers or {}).items()},
                    cookies=[str(c) for c in getattr(response, "cookies", None) or ()],
                )
            except BaseException as error:  # reported to the reader
                self._put(error)
                return
            self._put(head)
            self._pump(response.body)
        finally:
            self._put(_END)
            self.done.set()

    def _pump(self, body: Any) -> None:
        """Move the body's chunks to the queue until it ends or the reader leaves; then close it."""
        iterator = iter(body)
        try:
            if not self._cancelled.is_set():
                for chunk in iterator:
                    if self._cancelled.is_set() or not self._put(_to_bytes(chunk)):
                        break
        except BaseException as error:  # reported to the reader
            self._put(error)
        finally:
            close = getattr(body, "close", None) or getattr(iterator, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    log.exception("closing the stream body failed")

    def _put(self, item: Any) -> bool:
        while not self._cancelled.is_set():
            try:
                self._items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def head(self, timeout: float | None = None) -> StreamHead:
        """Wait for the handler to return its response; raises what the handler raised.

        ``queue.Empty`` when ``timeout`` passes first (the handler is still running).
        """
        item = self._items.get(timeout=timeout)
        if isinstance(item, BaseException):
            raise item
        if item is _END:
            raise StreamEnded("stream handler ended without a response")
        return item

    def next_chunk(self, timeout: float | None = None) -> bytes | None:
        """The next body chunk, or None when the body has ended; raises what the body raised.

        ``queue.Empty`` when ``timeout`` passes without a chunk (the body is quiet, not over).
        """
        item = self._items.get(timeout=timeout)
        if item is _END:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def chunks(self) -> Iterator[bytes]:
        """The body chunks as the handler yields them; raises what the body iterator raised."""
        while (chunk := self.next_chunk()) is not None:
            yield chunk

    def cancel(self) -> None:
        """The reader went away: stop iterating and close the body (on the handler's thread)."""
        self._cancelled.set()
        # Drain so a producer blocked on a full queue notices the cancellation.
        while True:
            try:
                self._items.get_nowait()
            except queue.Empty:
                return
