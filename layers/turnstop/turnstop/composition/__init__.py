"""The composition root: where every function (and the local runtime) builds its turn runner,
the model behind each turn chosen by its route (``runners``), and where a dialect's function
builds the app it serves (``apps``). It sits above everything else in the layer: it alone knows
the runtime, the providers and a dialect's agent together.

``runners`` loads when first asked for: a function whose app runs no turn in the request (the
omni, sessions and tasks APIs, chat's sign-in) never imports the runtime or the providers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from turnstop.composition.apps import FunctionApp, function_app

if TYPE_CHECKING:
    from turnstop.composition.runners import models, turn_runner

__all__ = ["FunctionApp", "function_app", "models", "turn_runner"]


def __getattr__(name: str) -> Any:
    if name in ("models", "turn_runner"):
        from turnstop.composition import runners

        return getattr(runners, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
