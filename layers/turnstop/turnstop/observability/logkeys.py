"""The keys that say which turn a log line is about: ``turn_id``, ``tenant``, ``dialect`` and
``cancel_source``.

Each is set where it becomes known, once for every function: the resolver (``dialect``, from
its error shape), the principal (``tenant``), the cancel write that every cancel path shares
(``turn_id``, ``cancel_source``, and the turn's own tenant and dialect: ``Turns.request_cancel``)
and the runtime running a turn (``TurnRunner``). Every line a function's Powertools Logger
writes then carries them.

They are Powertools' thread-safe keys (``Logger.thread_safe_append_keys``): one context
variable that every Powertools formatter reads. So the layer sets them without holding the
function's Logger, and two invocations served at once by one process (the local runtime's
thread pools) never see each other's keys. Each entry point starts clean (``reset``); a thread
a turn starts takes the keys of the one that started it (``carried``).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools.logging.formatter import clear_context_keys, set_context_keys

if TYPE_CHECKING:
    from turnstop.core.turn import Turn

KEYS = ("turn_id", "tenant", "dialect", "cancel_source")
T = TypeVar("T")


def bind(**keys: str | None) -> None:
    """Add the keys whose value is known (a ``None`` keeps what is there)."""
    known: Any = {name: value for name, value in keys.items() if value is not None}  # Powertools types each as a dict
    if known:
        set_context_keys(**known)


def bind_turn(turn: Turn) -> None:
    """The keys a turn's own head gives (its cancel's source once one was asked for)."""
    bind(turn_id=turn.id, tenant=turn.tenant, dialect=turn.scope.kind.dialect, cancel_source=turn.cancel_source)


def reset(**keys: str | None) -> None:
    """Forget every key (a new request, message or turn), then ``bind`` these."""
    clear_context_keys()
    bind(**keys)


def current() -> dict[str, Any]:
    """The keys in force here (what traces are annotated with)."""
    from aws_lambda_powertools.logging.formatter import THREAD_LOCAL_KEYS

    return {name: value for name in KEYS if (value := THREAD_LOCAL_KEYS.get().get(name)) is not None}


def carried(target: Callable[..., T]) -> Callable[..., T]:
    """``target`` to run on another thread with the keys of the thread that calls this."""
    context = contextvars.copy_context()
    return lambda *args, **kwargs: context.run(target, *args, **kwargs)
