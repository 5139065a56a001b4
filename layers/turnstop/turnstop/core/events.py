"""Turn events: the buffer readers replay and follow. ``seq`` starts at 1 and has no gaps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
