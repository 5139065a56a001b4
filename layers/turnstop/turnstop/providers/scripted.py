"""The scripted provider: today's offline model behind the provider seam.

Deterministic, so tests can count: one word per step, ``step_ms`` apart; "a 5000-word essay"
asks for 5000 words (else 64); "think for N seconds" is N seconds of silence before the first
word. Its tokens are words (its own tokenizer), its usage is exact, and an abort interrupts any
wait at once, as closing a connection would.
"""

from __future__ import annotations

from collections.abc import Iterator

from turnstop.providers.base import Chunk, ModelRequest, ProviderUsage
from turnstop.providers.config import Route
from turnstop.runtime.model import _VOCAB, LocalCall, requested_words, silent_seconds, words_sent


class ScriptedCall(LocalCall):
    def __init__(self, request: ModelRequest, step_ms: int, cap: int | None) -> None:
        super().__init__(request)
        self.step_ms = step_ms
        self.cap = cap

    def __iter__(self) -> Iterator[Chunk]:
        prompt = self.request.input
        n = requested_words(prompt)
        limit = n if self.cap is None else min(n, self.cap)
        self._wait(silent_seconds(prompt))
        for i in range(limit):
            self._wait(self.step_ms / 1000 if i else 0)
            word = _VOCAB[i % len(_VOCAB)]
            yield Chunk(word if i == n - 1 else word + " ")
        self.finish_reason = "length" if limit < n else "stop"
        self.usage = ProviderUsage(words_sent(self.request), limit)


class ScriptedProvider:
    def __init__(self, route: Route, step_ms: int) -> None:
        self.route = route
        self.step_ms = route.step_ms if route.step_ms is not None else step_ms

    def open(self, request: ModelRequest) -> ScriptedCall:
        return ScriptedCall(request, self.step_ms, request.max_output_tokens)

    def estimate_input_tokens(self, request: ModelRequest) -> int:
        return words_sent(request)
