"""The task object as a reader sees it: the head, the output committed so far and the state of
its callback. Shared by the tasks API and the cancel function."""

from __future__ import annotations

from typing import Any

from turnstop.core.turn import Turn
from turnstop.dialects.tasks import wire
from turnstop.store import Store


def task(store: Store, turn: Turn, warnings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The full task object (``turn`` read with its request)."""
    text = store.turns.committed_text(turn)
    callback = store.callbacks.get(turn.id) if turn.input.get("callback_url") and turn.terminal else None
    return wire.task_object(turn, text=text, callback=callback, warnings=warnings or [])
