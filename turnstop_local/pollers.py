"""What every local event-source mapping shares: a poller thread, and a group of them.

An SQS mapping (``sqs.SqsPoller``) and a DynamoDB Streams mapping (``streams.StreamPoller``)
each run one daemon thread that loops until asked to stop; a template's mappings of one kind
start together and stop together, all asked at once so that their waits overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Generic, Self, TypeVar


class Poller:
    """A daemon thread running ``_run`` until :meth:`request_stop`; ``_stop`` is its signal."""

    def __init__(self, thread_name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the poller to stop; it exits within one wait of its loop."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and wait up to ``timeout`` for the thread to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


P = TypeVar("P", bound=Poller)


class Mappings(Generic[P]):
    """All the mappings of one kind in a template."""

    def __init__(self, pollers: Sequence[P]) -> None:
        self.pollers = list(pollers)

    def start(self) -> Self:
        for poller in self.pollers:
            poller.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        for poller in self.pollers:
            poller.request_stop()  # all at once, so the waits below overlap
        for poller in self.pollers:
            poller.stop(timeout)
