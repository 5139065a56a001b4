"""The scripted provider: today's offline model behind the provider seam.

Deterministic, so tests can count: one word per step, ``step_ms`` apart; "a 5000-word essay"
asks for 5000 words (else 64); "think for N seconds" is N seconds of silence before the first
word. Its tokens are words (its own tokenizer), its usage is exact, and an abort interrupts any
wait at once, as closing a connection would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from turnstop.core.tokens import count_tokens
from turnstop.providers.base import CallAborted, Chunk, ModelRequest, ProviderUsage
from turnstop.providers.config import Route
from turnstop.runtime.model import _VOCAB, requested_words, silent_seconds


class ScriptedCall:
    def __init__(self, request: ModelRequest, step_ms: int, cap: int | None) -> None:
        self.request = request
        self.step_ms = step_ms
        self.cap = cap
        self.finish_reason: str | None = None
        self.usage: ProviderUsage | None = None
        self._aborted = threading.Event()
        self.produced = 0

    def abort(self) -> None:
        self._aborted.set()

    def _wait(self, seconds: float) -> None:
        if self._aborted.wait(seconds) if seconds > 0 else self._aborted.is_set():
            raise CallAborted

    def __iter__(self) -> Iterator[Chunk]:
        prompt = self.request.input
        n = requested_words(prompt)
        limit = n if self.cap is None else min(n, self.cap)
        self._wait(silent_seconds(prompt))
        for i in range(limit):
            if i and self.step_ms:
                self._wait(self.step_ms / 1000)
            elif self._aborted.is_set():
                raise CallAborted
            word = _VOCAB[i % len(_VOCAB)]
            self.produced = i + 1
            yield Chunk(word if i == n - 1 else word + " ")
        self.finish_reason = "length" if limit < n else "stop"
        self.usage = ProviderUsage(input_tokens(self.request), limit)


def input_tokens(request: ModelRequest) -> int:
    """The scripted tokenizer's count of everything sent: instructions, history, input."""
    parts = [request.instructions or "", *(m.content for m in request.history), request.input]
    return sum(count_tokens(p) for p in parts)


class ScriptedProvider:
    def __init__(self, route: Route, step_ms: int) -> None:
        self.route = route
        self.step_ms = route.step_ms if route.step_ms is not None else step_ms

    def open(self, request: ModelRequest) -> ScriptedCall:
        return ScriptedCall(request, self.step_ms, request.max_output_tokens)

    def estimate_output_tokens(self, request: ModelRequest) -> int:
        n = requested_words(request.input)
        return n if request.max_output_tokens is None else min(n, request.max_output_tokens)

    def estimate_input_tokens(self, request: ModelRequest) -> int:
        return input_tokens(request)
