"""What a fake upstream model does: a ``Behaviour`` per model name, and the ``Plan`` of one answer.

Output is deterministic: text token ``i`` is ``TEXT_WORDS[i % len]`` (with a leading space after
the first), thinking token ``i`` likewise from ``THINKING_WORDS``, so tests can compute the exact
text they expect (``expected_text``). Input tokens are the whitespace words of everything the
request sends the model (instructions, system and every message), counted by each protocol's
module with ``count_words``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

TEXT_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
THINKING_WORDS = ("hmm", "consider", "the", "question", "carefully", "then", "answer")


@dataclass(frozen=True)
class Fail:
    """A failure answer. ``status`` picks the protocol's error shape (OpenAI's error JSON, or the
    AWS exception named after the status: 429 ``ThrottlingException``, 500
    ``InternalServerException``, 503 ``ServiceUnavailableException``, 400 ``ValidationException``...).
    ``body`` replaces the protocol's error body with raw bytes; ``retry_after`` (seconds) adds a
    ``Retry-After`` header; ``code`` overrides the error code / AWS exception name."""

    status: int = 500
    message: str | None = None
    retry_after: float | None = None
    body: bytes | None = None
    code: str | None = None


@dataclass(frozen=True)
class Behaviour:
    """How the fake answers requests for one model name.

    - ``output_tokens`` text tokens (capped by the request's max tokens, which then ends with
      ``length`` / ``max_tokens`` / ``incomplete``), after ``thinking_tokens`` thinking tokens
      (the cap counts both, as reasoning models do).
    - ``tokens_per_second``: pacing of all tokens (0: as fast as the socket takes them).
    - ``prefill_s``: silence before the response headers; ``first_token_delay_s``: headers at
      once, then silence before the first token. Both end early when the client leaves.
    - ``fail``: answer with this failure instead (every request, or only the first
      ``fail_first`` requests for this model, then succeed); with ``fail_after=N`` the failure
      comes inside the stream after N tokens (an SSE error, an event-stream exception frame,
      ``response.failed``; without ``fail``, a 500).
    - ``garbage``: a 200 whose body is not the protocol.
    - ``stall_after=N``: after N tokens send nothing more until the client leaves.
    - ``close_after=N``: after N tokens close the connection without ending the answer.
    - ``cached_tokens``: reported as cached input tokens (at most the input tokens).
    - ``keeps_generating``: a server that does not notice its client leave (Chat Completions and
      Bedrock): it generates the rest of the answer on schedule anyway, counted in the record's
      ``tokens_after_disconnect``. Off: the fake stops at once, as vLLM or llama.cpp's server do.
    """

    output_tokens: int = 16
    tokens_per_second: float = 0.0
    prefill_s: float = 0.0
    first_token_delay_s: float = 0.0
    thinking_tokens: int = 0
    cached_tokens: int = 0
    fail: Fail | None = None
    fail_first: int | None = None
    fail_after: int | None = None
    garbage: bool = False
    stall_after: int | None = None
    close_after: int | None = None
    keeps_generating: bool = False

    def for_attempt(self, attempt: int) -> tuple[Behaviour, Fail | None]:
        """How this model's ``attempt``-th request (1-based) goes, and its failure if it fails
        (a request past ``fail_first`` succeeds, without the in-stream failure too)."""
        if self.fail is None:
            return self, (Fail() if self.fail_after is not None else None)
        if self.fail_first is not None and attempt > self.fail_first:
            return replace(self, fail_after=None), None
        return self, self.fail


@dataclass(frozen=True)
class Plan:
    """The tokens of one answer, fixed when the request arrives."""

    input_tokens: int
    cached_tokens: int
    thinking: tuple[str, ...]
    text: tuple[str, ...]
    truncated: bool

    @property
    def output_tokens(self) -> int:
        return len(self.thinking) + len(self.text)

    @property
    def tokens(self) -> list[tuple[str, str]]:
        """``(kind, piece)`` in order: thinking first, then text."""
        return [("thinking", t) for t in self.thinking] + [("text", t) for t in self.text]


def words(vocabulary: tuple[str, ...], n: int) -> tuple[str, ...]:
    return tuple(("" if i == 0 else " ") + vocabulary[i % len(vocabulary)] for i in range(n))


def expected_text(n: int) -> str:
    """The text of ``n`` output tokens."""
    return "".join(words(TEXT_WORDS, n))


def expected_thinking(n: int) -> str:
    return "".join(words(THINKING_WORDS, n))


def count_words(texts: Iterable[str]) -> int:
    return sum(len(t.split()) for t in texts)


def plan_for(behaviour: Behaviour, input_tokens: int, max_tokens: int | None) -> Plan:
    thinking, text = behaviour.thinking_tokens, behaviour.output_tokens
    truncated = False
    if max_tokens is not None and thinking + text > max_tokens:
        truncated = True
        thinking = min(thinking, max_tokens)
        text = max_tokens - thinking
    return Plan(
        input_tokens=input_tokens,
        cached_tokens=min(behaviour.cached_tokens, input_tokens),
        thinking=words(THINKING_WORDS, thinking),
        text=words(TEXT_WORDS, text),
        truncated=truncated,
    )
