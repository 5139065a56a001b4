"""Every dialect's renderers by turn kind, and what happens after a turn of each kind ends, for
the code that runs turns of any dialect (the worker). Functions that serve one dialect import
that dialect's renderers only."""

from __future__ import annotations

from collections.abc import Callable

from turnstop.core.turn import Turn, TurnEnd
from turnstop.runtime.renderer import Renderer
from turnstop.store import Store


def all_renderers() -> dict[str, Renderer]:
    # chat: its replies only (a reply whose request died is finished by the worker); its
    # actions never reach a worker, only a confirmation starts one
    from turnstop.dialects.chat.renderer import RENDERERS as chat
    from turnstop.dialects.llm.renderer import RENDERERS as llm
    from turnstop.dialects.omni.renderer import RENDERERS as omni
    from turnstop.dialects.sessions.renderer import RENDERERS as sessions
    from turnstop.dialects.tasks.renderer import RENDERERS as tasks

    return {**sessions, **omni, **llm, **tasks, **chat}


def after_finish(store: Store) -> Callable[[Turn, TurnEnd], None]:
    """The runner's after-finish hook: each dialect's, by turn kind (tasks queue their callback;
    a chat thread forgets its reply once it has ended)."""
    from turnstop.dialects.chat.renderer import REPLY_KIND
    from turnstop.dialects.chat.renderer import after_finish as chat
    from turnstop.dialects.tasks.callbacks import after_finish as tasks
    from turnstop.dialects.tasks.renderer import KIND as TASK_KIND

    hooks = {TASK_KIND: tasks(store), REPLY_KIND: chat(store)}

    def hook(turn: Turn, end: TurnEnd) -> None:
        by_kind = hooks.get(turn.kind)
        if by_kind is not None:
            by_kind(turn, end)

    return hook
