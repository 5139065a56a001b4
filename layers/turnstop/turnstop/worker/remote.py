"""A remote worker: serve a remote route's turns from a process of your own (docs/agents.md).

    from turnstop.worker import WorkerTurn
    from turnstop.worker.remote import RemoteWorker

    def handle(turn: WorkerTurn) -> None:
        turn.text("hello")
        turn.finish(input_tokens=10, output_tokens=1)

    RemoteWorker("https://api.example.com", key, "research").run(handle)

The handler gets the same ``WorkerTurn`` an in-process handler gets. Its emits are sent in
batches every ``flush_s``. When it has nothing to send, the worker asks at least every
``heartbeat_s`` whether the turn goes on: as a heartbeat if the handler showed life since the
last one (an emit, or ``turn.heartbeat()``), else as a plain question that does not count as
life, so a handler that hangs while its process lives ends the turn by the route's
``idle_timeout_s``, as in-process. The answer ``cancelled: true`` (or the offer gone) sets
``turn.cancel_event``, so every emit after it raises ``TurnCancelled`` and a tool watching the
event stops. Standard library only.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from typing import Any

from turnstop.providers.base import Chunk, Message, ModelRequest
from turnstop.worker import Handler, TurnCancelled, WorkerTurn

__all__ = ["RemoteTurn", "RemoteWorker"]

log = logging.getLogger(__name__)


def request_from(raw: dict[str, Any]) -> ModelRequest:
    history = tuple(Message(m["role"], m["content"]) for m in raw.get("history") or ())
    return ModelRequest(
        raw.get("input", ""),
        raw.get("instructions"),
        history,
        raw.get("max_output_tokens"),
        raw.get("sampling") or {},
        raw.get("approval"),
    )


class RemoteTurn:
    """One claimed offer: buffers the handler's emits and sends them; learns of the cancel."""

    def __init__(self, worker: RemoteWorker, offer: dict[str, Any], flush_s: float, heartbeat_s: float) -> None:
        self.worker = worker
        self.offer_id = str(offer["offer_id"])
        self.token = str(offer["token"])
        self.cancel_event = threading.Event()
        self.turn = WorkerTurn(request_from(offer["request"]), self._sink, self.cancel_event)
        self.turn.remote = self  # type: ignore[attr-defined]
        self._buffer: list[list[str]] = []
        self._alive = False  # the handler emitted or called heartbeat() since the last send
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flush_s, self._heartbeat_s = flush_s, heartbeat_s

    def _sink(self, item: Any) -> None:
        with self._lock:
            self._alive = True
            if isinstance(item, Chunk):
                self._buffer.append([item.kind, item.text])

    def send(self, events: list[list[str]], path: str = "events", **extra: Any) -> bool:
        """Post a batch (``finish``: the end); True once the answer says the turn is cancelled."""
        try:
            answer = self.worker.post(
                f"offers/{self.offer_id}/{path}", {"token": self.token, "events": events, **extra}
            )
        except urllib.error.HTTPError as e:
            if e.code != 404:  # 404: the offer is gone (its turn ended long ago): stop
                raise
            answer = None
        if answer is None or answer.get("cancelled"):
            self.cancel_event.set()
            return True
        return False

    def _take(self) -> tuple[list[list[str]], bool]:
        with self._lock:
            batch, self._buffer, alive, self._alive = self._buffer, [], self._alive, False
        return batch, alive

    def _pump(self) -> None:
        quiet = 0.0
        while not self._stop.wait(self._flush_s) and not self.cancel_event.is_set():
            quiet += self._flush_s
            if not self._buffer and quiet < self._heartbeat_s:
                continue
            batch, alive = self._take()
            quiet = 0.0
            try:
                self.send(batch, alive=alive)
            except (urllib.error.URLError, OSError) as e:  # kept: the next batch or heartbeat tries again
                log.warning("emit failed on offer %s: %s", self.offer_id, e)
                with self._lock:
                    self._buffer[:0] = batch
                    self._alive = self._alive or alive

    def run(self, handler: Handler) -> None:
        if self.send([]):  # the claim's acknowledgement: refused when it was offered again meanwhile
            return
        pump = threading.Thread(target=self._pump, name=f"pump-{self.offer_id}", daemon=True)
        pump.start()
        error: BaseException | None = None
        try:
            handler(self.turn)
        except TurnCancelled:
            pass
        except Exception as e:  # noqa: BLE001 - any failure of the handler fails the turn
            log.exception("the handler failed on offer %s", self.offer_id)
            error = e
        self._stop.set()
        pump.join()
        if self.cancel_event.is_set():
            return
        usage = self.turn.usage
        end: dict[str, Any] = {"reason": self.turn.finish_reason or "stop"}
        if usage is not None:
            end["usage"] = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
        if error is not None:
            end["error"] = type(error).__name__
        elif self.turn.asks is not None:
            end["asks"] = self.turn.asks
        self.send(self._take()[0], "finish", **end)


class RemoteWorker:
    """Claims offers of ``queue`` from turnstop's worker API with the route's worker ``key``."""

    def __init__(
        self,
        base_url: str,
        key: str,
        queue: str,
        *,
        flush_s: float = 0.1,
        heartbeat_s: float = 1.0,
        timeout_s: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.queue = queue
        self.flush_s, self.heartbeat_s, self.timeout_s = flush_s, heartbeat_s, timeout_s

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST under ``/v1/workers/{queue}/``; the JSON answer, or None for 204."""
        request = urllib.request.Request(
            f"{self.base_url}/v1/workers/{self.queue}/{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - the caller's URL
            data = response.read()
        return json.loads(data) if data else None

    def claim(self) -> RemoteTurn | None:
        """One long-poll: the next offer of the queue, or None when none came."""
        offer = self.post("claim", {})
        return None if offer is None else RemoteTurn(self, offer, self.flush_s, self.heartbeat_s)

    def run(self, handler: Handler, *, turns: int | None = None) -> None:
        """Claim and run offers one at a time, forever (or ``turns`` of them)."""
        done = 0
        while turns is None or done < turns:
            try:
                turn = self.claim()
            except (urllib.error.URLError, OSError) as e:
                log.warning("claim failed: %s", e)
                threading.Event().wait(1.0)
                continue
            if turn is not None:
                turn.run(handler)
                done += 1
