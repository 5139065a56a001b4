"""The scripted model's rules, and the older model interface (``stream(prompt)``) that tests
use for models of their own: ``LegacyCall`` puts such a model behind the provider seam
(``providers.base``), cutting its output at the request's cap as the runner used to."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from turnstop.core.tokens import count_tokens, first_tokens
from turnstop.providers.base import CallAborted, Chunk, ModelCall, ModelRequest, ProviderUsage

DEFAULT_WORDS = 64
MAX_WORDS = 100_000
_WORD_COUNT = re.compile(r"(\d[\d,]*)\s*-?\s*words?\b", re.IGNORECASE)
# "think for 30 seconds": the model says nothing that long before its first word
_THINK = re.compile(r"\bthink(?:s|ing)?\s+for\s+(\d{1,3}(?:\.\d{1,3})?)\s*(?:s|secs?|seconds?)\b", re.IGNORECASE)
_VOCAB = (
    "the cipher key turns plaintext into ciphertext and back again while every round mixes bits "
    "so that an observer learns nothing useful about the message or the secret"
).split()


class Model(Protocol):
    def stream(self, prompt: str) -> Iterator[Chunk]: ...


def requested_words(prompt: str) -> int:
    """The number written before "word"/"words"/"-word" ("a 5000-word essay" → 5000), else 64."""
    m = _WORD_COUNT.search(prompt)
    if not m:
        return DEFAULT_WORDS
    return max(1, min(int(m.group(1).replace(",", "")), MAX_WORDS))


def silent_seconds(prompt: str) -> float:
    """How long the prompt asks the model to think, silently, before its first word."""
    m = _THINK.search(prompt)
    return float(m.group(1)) if m else 0.0


class ScriptedModel:
    """Streams one word per step, ``step_ms`` apart: deterministic, so tests can count words.
    A prompt that asks it to "think for N seconds" gets N seconds of silence first."""

    def __init__(self, step_ms: int, sleep: Callable[[float], None] = time.sleep) -> None:
        self.step_ms = step_ms
        self.sleep = sleep

    def stream(self, prompt: str) -> Iterator[Chunk]:
        n = requested_words(prompt)
        if silent := silent_seconds(prompt):
            self.sleep(silent)
        for i in range(n):
            if i and self.step_ms:
                self.sleep(self.step_ms / 1000)
            word = _VOCAB[i % len(_VOCAB)]
            yield Chunk(word if i == n - 1 else word + " ")


def words_sent(request: ModelRequest) -> int:
    """Everything a request sends the model (instructions, history, input), counted in words:
    the scripted model's input tokens."""
    parts = [request.instructions or "", *(m.content for m in request.history), request.input]
    return sum(count_tokens(p) for p in parts)


class LocalCall:
    """The common part of an in-process model call: its request, its end, and an abort any
    thread may set (``_aborted``), which a wait of the call ends at once."""

    def __init__(self, request: ModelRequest) -> None:
        self.request = request
        self.finish_reason: str | None = None
        self.usage: ProviderUsage | None = None
        self._aborted = threading.Event()

    def abort(self) -> None:
        self._aborted.set()

    def _wait(self, seconds: float) -> None:
        """Wait ``seconds`` (none: just look), ending with CallAborted once aborted."""
        if self._aborted.wait(seconds) if seconds > 0 else self._aborted.is_set():
            raise CallAborted


class LegacyCall(LocalCall):
    """A ``Model`` (``stream(prompt)``) as a ``ModelCall``: output past the request's cap is
    cut at the cap (finish ``length``); an abort closes the generator at its next step. Its
    usage is counted in words, as the scripted model's tokens are."""

    def __init__(self, model: Model, request: ModelRequest) -> None:
        super().__init__(request)
        self.model = model

    def __iter__(self) -> Iterator[Chunk]:
        limit = self.request.max_output_tokens
        produced = 0
        stream = self.model.stream(self.request.input)
        try:
            for chunk in stream:
                self._wait(0)
                text = chunk.text
                if isinstance(limit, int) and chunk.kind == "text" and text:
                    if produced >= limit:  # more output than the caller allowed
                        self.finish_reason = "length"
                        break
                    text = first_tokens(text, limit - produced)
                produced += count_tokens(text) if chunk.kind == "text" else 0
                yield Chunk(text, chunk.kind)
                if text != chunk.text:
                    self.finish_reason = "length"
                    break
            else:
                self.finish_reason = "stop"
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
        self.usage = ProviderUsage(words_sent(self.request), produced)


def open_call(source: object, request: ModelRequest) -> ModelCall:
    """A provider's call (``open``), or an older ``stream(prompt)`` model's behind the same seam."""
    opener = getattr(source, "open", None)
    if opener is not None:
        call: ModelCall = opener(request)
        return call
    return LegacyCall(source, request)  # type: ignore[arg-type]


class WordsCall(LocalCall):
    """A fixed text as a model call: one word per step, ``step_ms`` apart; an abort ends any
    wait at once. Usage in words (input: everything sent)."""

    def __init__(self, text: str, step_ms: int, request: ModelRequest) -> None:
        super().__init__(request)
        self.words = text.split(" ")
        self.step_ms = step_ms

    def __iter__(self) -> Iterator[Chunk]:
        for i, word in enumerate(self.words):
            self._wait(self.step_ms / 1000 if i else 0)
            yield Chunk(word if i == len(self.words) - 1 else word + " ")
        self.finish_reason = "stop"
        self.usage = ProviderUsage(words_sent(self.request), len(self.words))
