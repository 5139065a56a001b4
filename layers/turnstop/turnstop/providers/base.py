"""The provider seam: what the runner asks of any model, and how it stops one.

A provider turns a ``ModelRequest`` (instructions, the conversation so far, the new input, an
output cap, sampling fields) into a ``ModelCall``: an iterator of ``Chunk`` (text or
thinking) that, once exhausted, knows its ``finish_reason`` and the provider's ``usage``.
``ModelCall.abort()`` may be called from any thread at any moment (while connecting, while
waiting for headers during a long prefill, mid-stream): it closes the call's connection (and,
where the provider has one, calls its cancel API), so the upstream stops generating. The
iterating thread then ends with ``CallAborted``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class Chunk:
    """A piece of model output."""

    text: str
    kind: str = "text"  # or "thinking"


@dataclass(frozen=True)
class Message:
    """One earlier message of the conversation."""

    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class ModelRequest:
    """Everything a provider needs for one call."""

    input: str
    instructions: str | None = None
    history: tuple[Message, ...] = ()
    max_output_tokens: int | None = None
    sampling: Mapping[str, Any] = field(default_factory=dict)  # temperature, top_p, ...
    # an agent's call to carry out the action a person approved (chat's confirm): what it asked
    approval: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ProviderUsage:
    """The provider's own token counts (``estimated`` when the provider never said)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    estimated: bool = False


class UpstreamErrorKind(enum.StrEnum):
    CONNECT = "connect"  # refused, unreachable, DNS
    TIMEOUT = "timeout"  # connect, first byte or idle timeout
    RATE_LIMITED = "rate_limited"  # 429 / throttling
    SERVER = "server"  # 5xx
    REJECTED = "rejected"  # other 4xx (bad key, bad model, context too long)
    BAD_RESPONSE = "bad_response"  # garbage, or closed mid-stream


class UpstreamError(Exception):
    """The provider failed. ``message`` is safe to show: never a key or an upstream body."""

    def __init__(
        self, kind: UpstreamErrorKind, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in (
            UpstreamErrorKind.CONNECT,
            UpstreamErrorKind.RATE_LIMITED,
            UpstreamErrorKind.SERVER,
            UpstreamErrorKind.TIMEOUT,
        )


class CallAborted(Exception):
    """The call was aborted from outside (``ModelCall.abort``)."""


class ModelCall(Protocol):
    finish_reason: str | None
    usage: ProviderUsage | None

    def __iter__(self) -> Iterator[Chunk]: ...

    def abort(self) -> None:
        """Stop the call now, from any thread; idempotent."""


class ModelProvider(Protocol):
    def open(self, request: ModelRequest) -> ModelCall:
        """Start a call; nothing blocks until iteration begins."""
