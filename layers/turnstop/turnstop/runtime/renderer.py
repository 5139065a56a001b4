"""How a dialect names and shapes a turn's events. The runtime is generic; each turn kind
registers a renderer so the worker writes the right vocabulary (``message.cancelled``,
``response.cancelled`` with the final object, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from turnstop.core.events import PendingEvent
from turnstop.core.turn import Status, Turn, Usage


@dataclass(frozen=True)
class Outcome:
    """What the runtime knows when a turn ends; ``text`` is the committed output only."""

    status: Status
    usage: Usage
    text: str
    thinking: str = ""
    error: dict[str, str] | None = None
    finished_at: int | None = None  # epoch ms the store records as the terminal time


def committed_text(events: list[Any]) -> str:
    """The visible output among events: by convention every dialect names its text deltas
    ``*.delta`` with the text in ``data["delta"]`` (anything else, thoughts included, is not
    output). The runtime uses this to record a lost worker's partial output."""
    return "".join(str(e.data.get("delta", "")) for e in events if e.type.endswith(".delta"))


class Renderer(Protocol):
    def on_start(self, turn: Turn) -> list[PendingEvent]: ...

    def on_delta(self, turn: Turn, text: str, kind: str) -> list[PendingEvent]: ...

    def on_end(self, turn: Turn, outcome: Outcome) -> list[PendingEvent]:
        """The closing events; the last one is the terminal event."""
        ...


def closing_items(renderer: Renderer, turn: Turn, outcome: Outcome) -> list[dict[str, Any]]:
    """Items a dialect writes once, with the terminal state, in the same transaction (a
    renderer opts in by defining ``closing_items``; plain dicts, put if absent)."""
    hook = getattr(renderer, "closing_items", None)
    return list(hook(turn, outcome)) if hook else []


_REGISTRY: dict[str, Renderer] = {}


def register(kind: str, renderer: Renderer) -> None:
    _REGISTRY[kind] = renderer


def renderer_for(kind: str) -> Renderer:
    if not _REGISTRY:
        import turnstop.dialects  # noqa: F401  (registers every dialect's renderers)
    return _REGISTRY[kind]
