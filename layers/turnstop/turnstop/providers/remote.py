"""The external provider of a remote route: its turns are produced by workers elsewhere.

The call puts an offer (``store.offers``) that a worker claims through the worker API
(``turnstop.worker.api``), then reads the worker's emits back from the offer's item every
``POLL_S`` and yields them, exactly as an in-process worker's (docs/agents.md). The runner keeps
the turn as for any provider: lease, flag checks, terminal events, billing. ``abort()`` marks
the offer cancelled, so the worker's next emit or heartbeat is refused and answered
``cancelled: true``; a worker that sends nothing (not a heartbeat either) for the route's
``idle_timeout_s`` — a dead one, or none claiming — fails the turn ``upstream_timeout``.
The hand-off goes through DynamoDB everywhere: in AWS the turn runs in one function and the
claim in another; locally the same code runs against the local store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from turnstop.core.ids import new_id
from turnstop.providers.base import CallAborted, Chunk, ModelRequest, ProviderUsage, UpstreamError, UpstreamErrorKind
from turnstop.providers.config import Route

log = logging.getLogger(__name__)

POLL_S = 0.1  # how often the runner reads the offer's item while the worker runs
ACK_S = 2.0  # a claim not acknowledged (a first emit) this long is offered again
SEEN_S = 3.0  # the runner says it is alive at least this often (store.offers.RUNNER_STALE_MS)


def request_json(request: ModelRequest) -> dict[str, Any]:
    out = asdict(request)
    out["sampling"] = dict(request.sampling)
    out["approval"] = None if request.approval is None else dict(request.approval)
    return out


class RemoteCall:
    def __init__(self, route: Route, offers: Any, request: ModelRequest) -> None:
        assert route.queue is not None
        self.queue = route.queue
        self.route = route
        self.offers = offers
        self.request = request
        self.offer_id = new_id("off_")
        self.finish_reason: str | None = None
        self.usage: ProviderUsage | None = None
        self.asks: dict[str, Any] | None = None
        self._aborted = threading.Event()
        self._claim: tuple[str, float] | None = None  # (token hash, first seen) of an unacknowledged claim

    def abort(self) -> None:
        if not self._aborted.is_set():
            self._aborted.set()
            self.offers.cancel(self.queue, self.offer_id)

    def __iter__(self) -> Iterator[Chunk]:
        self.offers.put(self.queue, self.offer_id, request_json(self.request))
        try:
            yield from self._read()
        finally:
            self.offers.cancel(self.queue, self.offer_id, done=True)  # no claim, no emit after the end

    def _read(self) -> Iterator[Chunk]:
        seen, quiet_since, said_alive = 0, time.monotonic(), time.monotonic()
        while not self._aborted.is_set():
            item = self.offers.read(self.queue, self.offer_id) or {}
            if self._aborted.is_set():
                break
            events = item.get("events") or []
            for kind, text in events:
                yield Chunk(text, "thinking" if kind == "thinking" else "text")
            if events or time.monotonic() - said_alive >= SEEN_S:
                self.offers.consumed(self.queue, self.offer_id, len(events))
                said_alive = time.monotonic()
            finished = item.get("finished")
            if finished is not None:
                self._finish(finished)
                return
            if int(item.get("n", 0)) != seen:
                seen, quiet_since = int(item.get("n", 0)), time.monotonic()
            elif self._unacknowledged(item):
                quiet_since = time.monotonic()  # a fresh idle window for the next claimer
            elif time.monotonic() - quiet_since >= self.route.idle_timeout_s:
                raise UpstreamError(
                    UpstreamErrorKind.TIMEOUT,
                    f"the worker of queue {self.queue} sent nothing for {self.route.idle_timeout_s:g} s",
                )
            self._aborted.wait(POLL_S)
        raise CallAborted

    def _unacknowledged(self, item: dict[str, Any]) -> bool:
        """A claim with no emit after ``ACK_S``: offered again (True) so another worker gets it."""
        token = item.get("token") if item.get("state") == "claimed" and not item.get("n") else None
        if token is None:
            self._claim = None
            return False
        if self._claim is None or self._claim[0] != token:
            self._claim = (str(token), time.monotonic())
            return False
        if time.monotonic() - self._claim[1] < ACK_S:
            return False
        self._claim = None
        return bool(self.offers.reopen(self.queue, self.offer_id, token))

    def _finish(self, finished: dict[str, Any]) -> None:
        if finished.get("error"):
            log.warning("the remote worker of queue %s failed: %s", self.queue, str(finished["error"])[:200])
            raise UpstreamError(UpstreamErrorKind.SERVER, f"the worker of queue {self.queue} failed")
        self.finish_reason = "length" if finished.get("reason") == "length" else "stop"
        self.asks = finished.get("asks") if isinstance(finished.get("asks"), dict) else None
        usage = finished.get("usage")
        if isinstance(usage, dict):
            self.usage = ProviderUsage(int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)))


class RemoteProvider:
    def __init__(self, route: Route, offers: Any = None) -> None:
        self.route = route
        self._offers = offers

    def open(self, request: ModelRequest) -> RemoteCall:
        if self._offers is None:
            from turnstop.platform.settings import Settings
            from turnstop.store import Store

            self._offers = Store(Settings.from_env().table).offers
        return RemoteCall(self.route, self._offers, request)
