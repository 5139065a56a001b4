"""Where turn events go: an EventBridge bus in AWS, a JSON-lines file in the local runtime.
Which records are ends, and what their events say, is ``turn_events/ends.py``."""

from __future__ import annotations

import json
import os
import threading
import uuid
from typing import Any, Protocol

from turnstop.store import codec
from turnstop.turn_events.ends import SOURCE, TurnEvent

PUT_EVENTS_MAX = 10  # entries per PutEvents call


class Sink(Protocol):
    def put(self, events: list[TurnEvent]) -> list[int]:
        """Publish; the indexes of the events that were not published (to retry)."""
        ...


class EventBridgeSink:
    def __init__(self, bus: str, client: Any = None) -> None:
        self.bus = bus
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from turnstop.store.db import client

            self._client = client("events")
        return self._client

    def put(self, events: list[TurnEvent]) -> list[int]:
        failed: list[int] = []
        for start in range(0, len(events), PUT_EVENTS_MAX):
            chunk = events[start : start + PUT_EVENTS_MAX]
            entries = [
                {
                    "Source": SOURCE,
                    "DetailType": e.detail_type,
                    "Detail": codec.compact_json(e.detail),
                    "Time": e.time,
                    "Resources": [],
                    "EventBusName": self.bus,
                }
                for e in chunk
            ]
            answer = self.client.put_events(Entries=entries)
            failed += [start + i for i, out in enumerate(answer.get("Entries") or []) if out.get("ErrorCode")]
        return failed


class FileSink:
    """The local runtime's bus: each event appended to a file as EventBridge would deliver it."""

    _lock = threading.Lock()

    def __init__(self, path: str, region: str = "us-east-1", account: str = "123456789012") -> None:
        self.path = path
        self.region = region
        self.account = account

    def envelope(self, event: TurnEvent) -> dict[str, Any]:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": event.detail_type,
            "source": SOURCE,
            "account": self.account,
            "time": event.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [],
            "detail": event.detail,
        }

    def put(self, events: list[TurnEvent]) -> list[int]:
        lines = "".join(json.dumps(self.envelope(e), separators=(",", ":")) + "\n" for e in events)
        with self._lock:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(lines)
        return []
