"""The toy dialect's events, and its after-finish hook (it records the turns that ended)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from turnstop.core.events import PendingEvent
from turnstop.core.turn import Turn, TurnEnd
from turnstop.runtime.renderer import Renderer

KIND = "toy"
ENDED: list[tuple[str, str]] = []  # (turn id, status) of each turn the hook heard of


class ToyRenderer(Renderer):
    def on_delta(self, turn: Turn, text: str, kind: str) -> list[PendingEvent]:
        return [PendingEvent("toy.delta", {"text": text})]

    def on_end(self, turn: Turn, end: TurnEnd) -> list[PendingEvent]:
        return [PendingEvent(f"toy.{end.status.value}", {})]


RENDERERS: dict[str, Renderer] = {KIND: ToyRenderer()}


def after_finish(store: Any) -> Callable[[Turn, TurnEnd], None]:
    def hook(turn: Turn, end: TurnEnd) -> None:
        ENDED.append((turn.id, end.status.value))

    return hook
