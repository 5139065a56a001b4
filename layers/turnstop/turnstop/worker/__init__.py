"""The public worker API: your own agent behind turnstop's stop button (docs/agents.md).

A route ``{"provider": "external", "queue": "<name>"}`` hands its turns to the handler served
under that queue name. turnstop's own runner still claims the turn (lease, takeover), keeps it
(flushes, the cancel flag check, the deadline) and writes its end (terminal events, billing);
the handler only produces its output through a ``WorkerTurn``::

    from turnstop.worker import WorkerTurn, serve

    @serve("research")
    def research(turn: WorkerTurn) -> None:
        turn.progress("searching")
        for word in my_agent(turn.input, stop=turn.cancel_event):
            turn.text(word)
        turn.finish(input_tokens=120, output_tokens=40)

A route's ``handler`` ("package.module:function") is imported and served under its queue when
the route is first used, so the handler runs wherever the turn runs (the worker function, a
streaming function, ``make run``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from turnstop.providers.base import Chunk, Message, ModelRequest, ProviderUsage

# the handler API's names; and the modules other packages may import: the worker API's server
# side (``api``), the remote client (``remote``) and the framework integrations
__all__ = [
    "Handler",
    "TurnCancelled",
    "WorkerTurn",
    "api",
    "handler_for",
    "openai_agents",
    "pydantic_ai",
    "remote",
    "serve",
    "strands",
]


class TurnCancelled(Exception):
    """The turn was cancelled (or has otherwise ended): nothing more is accepted from the worker."""


Sink = Callable[[Any], None]


class WorkerTurn:
    """One turn as its worker sees it: the full request, ways to emit, and the cancel signal."""

    def __init__(self, request: ModelRequest, sink: Sink, cancel_event: threading.Event) -> None:
        self.request = request
        self._sink = sink
        self.cancel_event = cancel_event  # set by the runtime's own cancel check (or any other end)
        self.usage: ProviderUsage | None = None
        self.finish_reason: str | None = None
        self.output = ""
        self.asks: dict[str, Any] | None = None  # the action this turn asks a person to approve

    # -- what the turn asks

    @property
    def input(self) -> str:
        return self.request.input

    @property
    def instructions(self) -> str | None:
        return self.request.instructions

    @property
    def history(self) -> tuple[Message, ...]:
        return self.request.history

    @property
    def approval(self) -> dict[str, Any] | None:
        """In a turn that carries out an approved action (chat's confirm), the action this
        agent asked for: ``type``, ``summary``, ``confirmation``, ``params``. Else None."""
        return None if self.request.approval is None else dict(self.request.approval)

    @property
    def cancelled(self) -> bool:
        """Cheap (no I/O): True once the runtime has seen the cancel, or the turn has ended otherwise."""
        return self.cancel_event.is_set()

    def asyncio_event(self, loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Event:
        """An ``asyncio.Event`` of ``loop`` (default: the running one) set when ``cancel_event`` is."""
        loop = loop or asyncio.get_running_loop()
        event = asyncio.Event()

        def watch() -> None:
            self.cancel_event.wait()
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

        threading.Thread(target=watch, name="turn-cancel-watch", daemon=True).start()
        return event

    @contextlib.asynccontextmanager
    async def on_cancel(self, action: Callable[[], object]) -> AsyncIterator[None]:
        """Within the block (on a running event loop), ``action()`` runs as soon as the turn is
        cancelled: an asyncio framework's own cancel (a token, a run's ``cancel()``)."""
        cancelled = self.asyncio_event()

        async def watch() -> None:
            await cancelled.wait()
            action()

        watcher = asyncio.create_task(watch())
        try:
            yield
        finally:
            watcher.cancel()

    # -- what the worker produces

    def _put(self, item: Any) -> None:
        if self.cancel_event.is_set():
            raise TurnCancelled
        self._sink(item)

    def text(self, text: str) -> None:
        """Output text: the dialect's deltas. Raises ``TurnCancelled`` once the turn is cancelled."""
        if text:
            self._put(Chunk(text))
            self.output += text

    def thinking(self, text: str) -> None:
        """Reasoning text: the dialect's thinking events (where it has them)."""
        if text:
            self._put(Chunk(text, "thinking"))

    def progress(self, message: str) -> None:
        """A step the agent is taking, as one line of thinking: ``[progress] message``."""
        self.thinking(f"[progress] {message}\n")

    def tool_call(self, name: str, arguments: Any = None) -> None:
        """A tool call the agent makes, as one line of thinking: ``[tool] name {arguments}``."""
        args = "" if arguments is None else " " + json.dumps(arguments, sort_keys=True, default=str)
        self.thinking(f"[tool] {name}{args}\n")

    def heartbeat(self) -> None:
        """Alive, with nothing to say (a long tool call): resets the route's ``idle_timeout_s``."""
        self._put(None)

    def request_approval(
        self, type: str, summary: str, confirmation: str, params: dict[str, Any] | None = None
    ) -> None:
        """Ask a person to approve an action before the agent takes it (a human-in-the-loop
        tool). In the chat dialect the reply ends asking ``confirmation`` (``requires_confirmation``)
        and the action waits: ``POST /chat/confirm`` runs this handler again with
        ``turn.approval`` set, to carry it out; ``POST /chat/cancel`` drops it. Once per turn;
        ``params`` must be JSON. Elsewhere (no person to ask) the reply just ends."""
        if self.asks is not None:
            raise ValueError("a turn asks for one approval at most")
        json.dumps(params or {})  # refused now, not when the reply ends
        self._put(None)  # refused after the cancel, like any emit
        self.asks = {
            "type": str(type),
            "summary": str(summary),
            "confirmation": str(confirmation),
            "params": dict(params or {}),
        }

    def finish(
        self, input_tokens: int = 0, output_tokens: int = 0, *, reason: str = "stop", estimated: bool = False
    ) -> None:
        """Done: the usage the billing rules price (as a provider's); ``reason`` "length" ends incomplete."""
        self.usage = ProviderUsage(input_tokens, output_tokens, estimated=estimated)
        self.finish_reason = reason


Handler = Callable[[WorkerTurn], None]
_handlers: dict[str, Handler] = {}
_lock = threading.Lock()


def serve(queue: str) -> Callable[[Handler], Handler]:
    """Decorator: ``handler`` runs the turns of routes with this ``queue``."""

    def register(handler: Handler) -> Handler:
        with _lock:
            _handlers[queue] = handler
        return handler

    return register


def handler_for(queue: str, spec: str | None = None) -> Handler | None:
    """The handler served under ``queue``; ``spec`` ("module:function") is imported first if given."""
    if spec is not None and queue not in _handlers:
        module, _, name = spec.partition(":")
        serve(queue)(getattr(importlib.import_module(module), name))
    with _lock:
        return _handlers.get(queue)
