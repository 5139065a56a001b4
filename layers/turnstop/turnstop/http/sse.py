"""Server-sent events: framing, the live reader of the request that runs a turn, and the
reader that replays and follows a turn's durable buffer.

The live reader gets each event from the runtime as it is emitted (no store reads at all).
Every other reader (resume, a second tab, pollers) reads the head's committed seq, then the
events up to it; so replay from any Last-Event-ID works during the turn and within its grace
window, ending with the terminal event. A queued turn cancelled before any worker touched it
has no terminal event yet; the reader derives it from the head exactly as the worker will
write it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from turnstop.core.events import Event
from turnstop.core.turn import Turn
from turnstop.http.response import StreamingResponse
from turnstop.platform.settings import Settings
from turnstop.runtime.active import DETACHED, END, LiveChannel
from turnstop.runtime.live import LiveTurn
from turnstop.runtime.renderer import Renderer, derived_terminal
from turnstop.store import Store

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def frame(ev: Event, data: dict[str, Any] | None = None) -> str:
    payload = json.dumps(ev.data if data is None else data, separators=(",", ":"))
    return f"id: {ev.seq}\nevent: {ev.type}\ndata: {payload}\n\n"


def keepalive() -> str:
    return ": keep-alive\n\n"


def follow(
    store: Store,
    turn: Turn,
    after: int,
    *,
    renderer: Renderer,
    poll_ms: int,
    keepalive_s: float,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    render: Callable[[Event], str] = frame,
    max_poll_ms: int = 1000,
) -> Iterator[str]:
    """Yield frames after ``after`` until the terminal event, then stop.

    The head is polled every ``poll_ms`` while the turn moves; each poll that finds nothing
    new doubles the wait, up to ``max_poll_ms``, so a quiet turn costs a read a second, not
    twenty. Any progress resets it."""
    cursor = after
    quiet_since = monotonic()
    wait_ms = poll_ms
    polled = False  # the first pass reads the head it was given: not a poll that found nothing
    head: Turn | None = turn
    while True:
        if head is None or head.expired(store.now()):
            return
        if head.seq > cursor:
            for ev in store.turns.read_events(head.id, cursor, head.seq):
                yield render(ev)
                cursor = ev.seq
            quiet_since = monotonic()
            wait_ms = poll_ms
        elif polled:
            wait_ms = min(max_poll_ms, wait_ms * 2)
        if head.terminal and cursor >= head.seq:
            if head.cancelled_before_start:
                for ev in derived_terminal(renderer, store.turns.with_input(head)):
                    if ev.seq > cursor:
                        yield render(ev)
            return
        if monotonic() - quiet_since >= keepalive_s:
            yield keepalive()
            quiet_since = monotonic()
        sleep(wait_ms / 1000)
        head = store.turns.head(turn.id)
        polled = True


def stream_response(
    store: Store,
    settings: Settings,
    turn: Turn,
    after: int,
    *,
    renderer: Renderer,
    status: int = 200,
    render: Callable[[Event], str] = frame,
) -> StreamingResponse:
    """The SSE answer every dialect gives: ``X-Response-Id`` at once, then the turn's
    events after ``after``, followed live with the settings' poll and keep-alive timing."""
    body = follow(
        store,
        turn,
        after,
        renderer=renderer,
        poll_ms=settings.reader_poll_ms,
        max_poll_ms=settings.reader_max_poll_ms,
        keepalive_s=settings.keepalive_seconds,
        render=render,
    )
    return StreamingResponse(status, {**SSE_HEADERS, "X-Response-Id": turn.id}, body)


def live_response(
    store: Store,
    settings: Settings,
    turn: Turn,
    channel: LiveChannel,
    running: threading.Thread,
    *,
    renderer: Renderer,
    render: Callable[[Event], str] = frame,
    first: list[Event] | None = None,
) -> StreamingResponse:
    """The SSE answer of the request that runs its turn: ``X-Response-Id`` at once, then each
    event as the runtime emits it. If this runtime loses the turn, the reader goes on from the
    store. A reader that leaves does not stop the turn: the answer waits for it to end, so the
    invocation lives as long as the turn (resume serves the rest)."""

    def frames() -> Iterator[str]:
        cursor = turn.seq
        try:
            for ev in first or []:
                yield render(ev)
            quiet = 0.0
            while True:
                item = channel.get(timeout=0.25)
                if item is END:
                    return
                if item is DETACHED:
                    head = store.turns.head(turn.id)
                    yield from follow(
                        store,
                        head or turn,
                        cursor,
                        renderer=renderer,
                        poll_ms=settings.reader_poll_ms,
                        max_poll_ms=settings.reader_max_poll_ms,
                        keepalive_s=settings.keepalive_seconds,
                        render=render,
                    )
                    return
                if item is None:
                    quiet += 0.25
                    if quiet >= settings.keepalive_seconds:
                        quiet = 0.0
                        yield keepalive()
                    continue
                quiet = 0.0
                for ev in item:
                    cursor = ev.seq
                    yield render(ev)
        finally:
            running.join()

    return StreamingResponse(200, {**SSE_HEADERS, "X-Response-Id": turn.id}, frames())


def live_turn_response(
    store: Store, settings: Settings, live: LiveTurn, *, renderer: Renderer, render: Callable[[Event], str] = frame
) -> StreamingResponse:
    """``live_response`` for a turn a service started running in this request."""
    return live_response(
        store, settings, live.turn, live.channel, live.running, renderer=renderer, render=render, first=list(live.first)
    )
