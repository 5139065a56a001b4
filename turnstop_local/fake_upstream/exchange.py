"""One request's answer on the wire, and how the fake notices that the client left.

A real inference server stops generating when its client goes away; so does the fake. While it
is silent (a prefill before the headers, a pause before the first token, the gap between paced
tokens, a stall) it waits in ``poll`` on the client's socket, which wakes at once when the
client closes it (EOF or reset), and it checks the socket again before every write; a write that
fails also counts as the client leaving. Each answer is written with chunked transfer encoding
(as OpenAI and AWS send streams) or with a ``Content-Length``, so the connection stays usable for
the next request.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any

from turnstop_local.fake_upstream.behaviour import Behaviour, Plan
from turnstop_local.fake_upstream.records import RequestRecord

# The longest a silent wait goes without looking at the server's stop flag (EOF wakes it at once).
_WAKE_S = 0.05
_READABLE = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR


def readable(socks: list[socket.socket], seconds: float) -> list[socket.socket]:
    """The sockets among ``socks`` readable (or hung up) within ``seconds``. ``poll``, not
    ``select``: a busy benchmark's descriptors go past ``select``'s limit of 1024."""
    poller = select.poll()
    for sock in socks:
        poller.register(sock, _READABLE)
    ready = {fd for fd, _ in poller.poll(max(0.0, seconds) * 1000)}
    return [sock for sock in socks if sock.fileno() in ready]


class Exchange:
    """The answer to one request: headers, body chunks, silences, and the record of it all."""

    def __init__(self, handler: BaseHTTPRequestHandler, record: RequestRecord, stopping: threading.Event) -> None:
        self.handler = handler
        self.record = record
        self.sock: socket.socket = handler.connection
        self.stopping = stopping
        self.chunked = False
        self.gone = False

    # -- noticing the client leave ----------------------------------------------------------

    def client_gone(self) -> bool:
        """True once the client closed or reset its connection (a non-blocking look)."""
        if self.gone:
            return True
        try:
            if readable([self.sock], 0) and self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                self._lost()
        except BlockingIOError:
            pass
        except (OSError, ValueError):
            self._lost()
        return self.gone

    def wait(self, seconds: float | None) -> bool:
        """Stay silent for ``seconds`` (None: until the client leaves or the server stops).
        False if the client left meanwhile."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while not self.client_gone():
            if self.stopping.is_set():
                self._lost()
                break
            remaining = _WAKE_S if deadline is None else min(_WAKE_S, deadline - time.monotonic())
            if remaining <= 0:
                return True
            try:
                ready = readable([self.sock], remaining)
            except (OSError, ValueError):
                self._lost()
                break
            if ready and not self.client_gone():
                # The client sent bytes mid-answer (not EOF): poll would not block any more.
                time.sleep(remaining)
        return False

    def wait_or_wake(self, wake: socket.socket, seconds: float) -> bool:
        """Stay silent until ``wake`` has bytes (drained here) or ``seconds`` pass. False if the
        client left (or the server stops)."""
        if self.client_gone() or self.stopping.is_set():
            self._lost()
            return False
        try:
            ready = readable([self.sock, wake], seconds)
        except (OSError, ValueError):
            self._lost()
            return False
        if wake in ready:
            try:
                wake.recv(4096)
            except OSError:
                pass
        if self.sock in ready and not self.client_gone() and wake not in ready:
            time.sleep(min(seconds, _WAKE_S))  # bytes from the client mid-answer: poll would spin
        return not self.client_gone()

    def _lost(self) -> None:
        self.gone = True
        self.handler.close_connection = True
        self.record.mark_disconnected()

    # -- writing ----------------------------------------------------------------------------

    def send_headers(self, status: int, headers: Iterable[tuple[str, str]], *, chunked: bool) -> bool:
        if self.client_gone():
            return False
        handler = self.handler
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        try:
            handler.end_headers()
        except OSError:
            self._lost()
            return False
        self.chunked = chunked
        self.record.update(status=status, headers_sent_at=time.monotonic())
        return True

    def write(self, data: bytes) -> bool:
        """Send ``data`` (as one chunk when chunked). False if the client has left."""
        if self.client_gone():
            return False
        framed = b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data
        try:
            self.sock.sendall(framed)
        except OSError:
            self._lost()
            return False
        return True

    def end(self, outcome: str, tail: bytes = b"") -> None:
        """Write ``tail`` and the last chunk in one go (a client that stops reading at the last
        event must not look like one that left early); the connection stays open for more."""
        if self.client_gone():
            return
        framed = (b"%x\r\n%s\r\n" % (len(tail), tail) if tail else b"") + b"0\r\n\r\n" if self.chunked else tail
        if self.write_raw(framed):
            self.finish(outcome)

    def write_raw(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
        except OSError:
            self._lost()
            return False
        return True

    def finish(self, outcome: str) -> None:
        with self.record._cond:
            if self.record.disconnected_at is None:
                self.record.finished_at = time.monotonic()
                self.record.outcome = outcome
            self.record._cond.notify_all()

    def close_abruptly(self) -> None:
        """Drop the connection mid-answer (no last chunk), as a crashed upstream does."""
        self.handler.close_connection = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.finish("closed")

    def answer(self, status: int, body: bytes, content_type: str, extra: Iterable[tuple[str, str]] = ()) -> None:
        """A whole buffered answer with a Content-Length."""
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra]
        if self.send_headers(status, headers, chunked=False) and self.write(body):
            self.finish("error" if status >= 400 else "completed")

    def answer_json(self, status: int, payload: Any, extra: Iterable[tuple[str, str]] = ()) -> None:
        self.answer(status, json.dumps(payload).encode(), "application/json", extra)

    # -- streaming tokens -------------------------------------------------------------------

    def prefill(self, behaviour: Behaviour, plan_tokens: int) -> bool:
        """The silence before the headers. False if the client left (then a behaviour that
        ``keeps_generating`` spends the whole answer's time and tokens anyway)."""
        started = time.monotonic()
        if not behaviour.prefill_s or self.wait(behaviour.prefill_s):
            return True
        if behaviour.keeps_generating:
            self._generate_unread(
                behaviour, 0, plan_tokens, started + behaviour.prefill_s + behaviour.first_token_delay_s
            )
        return False

    def _generate_unread(self, behaviour: Behaviour, start: int, end: int, started: float) -> None:
        """A server that does not notice its client left: it generates tokens ``start``..``end``
        on schedule anyway, counted in ``tokens_after_disconnect``."""
        interval = 1.0 / behaviour.tokens_per_second if behaviour.tokens_per_second > 0 else 0.0
        for index in range(start, end):
            if self.stopping.wait(max(0.0, started + index * interval - time.monotonic())):
                return
            self.record.update(tokens_after_disconnect=self.record.tokens_after_disconnect + 1)

    def stream_tokens(self, behaviour: Behaviour, plan: Plan, emit: Callable[[int, str, str], bytes]) -> str:
        """Write the plan's tokens with ``emit(index, kind, piece)`` framing each, paced by
        ``behaviour``. Returns ``"done"``, ``"gone"`` (client left), ``"fail"`` (the behaviour's
        in-stream failure is due), ``"stalled"`` or ``"closed"`` (both already handled)."""
        result, index, started = self._stream_tokens(behaviour, plan, emit)
        if result == "gone" and behaviour.keeps_generating:
            self._generate_unread(behaviour, index, len(plan.tokens), started)
        return result

    def _stream_tokens(
        self, behaviour: Behaviour, plan: Plan, emit: Callable[[int, str, str], bytes]
    ) -> tuple[str, int, float]:
        """``stream_tokens``' result, the index of the first token not generated, the schedule's start."""
        interval = 1.0 / behaviour.tokens_per_second if behaviour.tokens_per_second > 0 else 0.0
        started = time.monotonic() + behaviour.first_token_delay_s
        if behaviour.first_token_delay_s and not self.wait(behaviour.first_token_delay_s):
            return "gone", 0, started
        for index, (kind, piece) in enumerate(plan.tokens):
            if index == behaviour.stall_after:
                self.record.update(outcome="stalled")
                self.wait(None)
                return "stalled", index, started
            if index == behaviour.close_after:
                self.close_abruptly()
                return "closed", index, started
            if index == behaviour.fail_after:
                return "fail", index, started
            due = started + index * interval
            if not self.wait(max(0.0, due - time.monotonic())):
                return "gone", index, started
            if not self.write(emit(index, kind, piece)):
                self.record.update(tokens_after_disconnect=self.record.tokens_after_disconnect + 1)
                return "gone", index + 1, started
            self.record.token_sent()
        n = len(plan.tokens)
        if behaviour.stall_after == n:
            self.record.update(outcome="stalled")
            self.wait(None)
            return "stalled", n, started
        if behaviour.close_after == n:
            self.close_abruptly()
            return "closed", n, started
        if behaviour.fail_after is not None and behaviour.fail_after >= n:
            return "fail", n, started
        return "done", n, started

    def generate_silently(self, behaviour: Behaviour, plan: Plan) -> str:
        """Spend the time the plan's tokens take without writing them (a non-streaming answer);
        the same results as ``stream_tokens``."""
        n = len(plan.tokens)
        interval = 1.0 / behaviour.tokens_per_second if behaviour.tokens_per_second > 0 else 0.0
        points = [
            (p, what)
            for p, what in (
                (behaviour.stall_after, "stalled"),
                (behaviour.close_after, "closed"),
                (behaviour.fail_after, "fail"),
            )
            if p is not None
        ]
        stop_at, result = min(points, default=(n, "done"))
        if not self.wait(behaviour.first_token_delay_s + min(stop_at, n) * interval):
            return "gone"
        if result == "stalled":
            self.record.update(outcome="stalled")
            self.wait(None)
        elif result == "closed":
            self.close_abruptly()
        return result
