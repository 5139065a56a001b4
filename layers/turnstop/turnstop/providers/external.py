"""The external provider: a route's turns produced by the platform's own agent code.

The call runs the queue's handler (``turnstop.worker``) on a thread of its own and streams
what it emits: text and thinking chunks in order, tool calls and progress as thinking lines.
``abort()`` (the keeper saw the cancel, the deadline, a lost lease) sets the worker's cancel
event at once; from then on everything the worker emits is refused (``TurnCancelled``), and the
runner's own guard refuses it too, so nothing reaches a reader after the terminal event. A
worker that raises fails the turn; one that sends nothing (not even a heartbeat) for the route's
``idle_timeout_s`` is given up on: its cancel event is set and the turn fails ``upstream_timeout``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

from turnstop.providers.base import CallAborted, Chunk, ModelRequest, ProviderUsage, UpstreamError, UpstreamErrorKind
from turnstop.providers.config import Route
from turnstop.worker import Handler, TurnCancelled, WorkerTurn, handler_for

log = logging.getLogger(__name__)

_DONE = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class ExternalCall:
    def __init__(self, route: Route, handler: Handler, request: ModelRequest) -> None:
        self.route = route
        self.handler = handler
        self.request = request
        self.finish_reason: str | None = None
        self.usage: ProviderUsage | None = None
        self.asks: dict[str, Any] | None = None
        self.cancel_event = threading.Event()
        self._items: queue.Queue[Any] = queue.Queue()
        self.turn = WorkerTurn(request, self._items.put, self.cancel_event)

    def abort(self) -> None:
        self.cancel_event.set()
        self._items.put(CallAborted)

    def _work(self) -> None:
        try:
            self.handler(self.turn)
        except TurnCancelled:
            pass  # it kept going after the cancel and was refused: the turn has ended already
        except BaseException as error:  # noqa: BLE001 - any failure of the worker fails the turn
            self._items.put(_Failed(error))
            return
        self._items.put(_DONE)

    def __iter__(self) -> Iterator[Chunk]:
        threading.Thread(target=self._work, name=f"worker-{self.route.queue}", daemon=True).start()
        try:
            yield from self._read()
        finally:
            self.cancel_event.set()  # however it ended: the worker's watchers (asyncio_event) let go

    def _read(self) -> Iterator[Chunk]:
        while True:
            try:
                item = self._items.get(timeout=self.route.idle_timeout_s)
            except queue.Empty:
                raise UpstreamError(
                    UpstreamErrorKind.TIMEOUT,
                    f"the worker of queue {self.route.queue} sent nothing for {self.route.idle_timeout_s:g} s",
                ) from None
            if item is CallAborted or self.cancel_event.is_set():
                raise CallAborted
            if isinstance(item, Chunk):
                yield item
            elif isinstance(item, _Failed):
                log.warning("the worker of queue %s failed", self.route.queue, exc_info=item.error)
                raise UpstreamError(
                    UpstreamErrorKind.SERVER,
                    f"the worker of queue {self.route.queue} failed ({type(item.error).__name__})",
                )
            elif item is _DONE:
                break
        self.finish_reason = self.turn.finish_reason or "stop"
        self.usage = self.turn.usage  # None: the runtime counts what was emitted (an estimate)
        self.asks = self.turn.asks


class ExternalProvider:
    def __init__(self, route: Route) -> None:
        self.route = route

    def open(self, request: ModelRequest) -> ExternalCall:
        assert self.route.queue is not None
        handler = handler_for(self.route.queue, self.route.handler)
        if handler is None:
            raise UpstreamError(UpstreamErrorKind.CONNECT, f"no worker serves queue {self.route.queue}")
        return ExternalCall(self.route, handler, request)
