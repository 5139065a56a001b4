"""Turn events: the buffer readers replay and follow. ``seq`` starts at 1 and has no gaps."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Event:
    seq: int
    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class PendingEvent:
    """An event the runtime has emitted but not yet committed (not yet visible)."""

    type: str
    data: dict[str, Any]


class _Typed(Protocol):
    @property
    def type(self) -> str: ...

    @property
    def data(self) -> dict[str, Any]: ...


def is_text_delta(event: _Typed) -> bool:
    """The convention every dialect follows: visible output is in events named ``*.delta``
    with the text in ``data["delta"]``; anything else (thoughts included) is not output."""
    return event.type.endswith(".delta")


def committed_text(events: Iterable[_Typed]) -> str:
    """The visible output among events (see ``is_text_delta``)."""
    return "".join(str(e.data.get("delta", "")) for e in events if is_text_delta(e))
