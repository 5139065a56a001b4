"""The app a dialect's function serves, built from its ``TURNSTOP_APP`` (template.yaml).

A factory that runs turns in the request (it takes a ``runner``: a foreground stream, a chat
reply) is given one for its dialect's turn kinds, with its dialect's after-finish hook, exactly
as the worker runs them; any other factory takes the store and the settings only. The cancel
functions do not come here: they call ``registry.served()`` themselves and load no runner."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from turnstop.dialects.registry import dialect_of_module, served

if TYPE_CHECKING:
    from turnstop.http.api import TurnstopResolver
    from turnstop.platform.settings import Settings
    from turnstop.runtime.runner import TurnRunner
    from turnstop.store import Store

__all__ = ["FunctionApp", "function_app"]


@dataclass(frozen=True)
class FunctionApp:
    app: TurnstopResolver
    runner: TurnRunner | None  # the runner of the turns it runs in the request, if it runs any


def function_app(store: Store, settings: Settings, environ: Mapping[str, str] = os.environ) -> FunctionApp:
    """The resolver named by ``TURNSTOP_APP`` in ``environ``, wired to ``store`` and ``settings``."""
    factory = served(environ)
    if "runner" not in inspect.signature(factory).parameters:
        return FunctionApp(factory(store, settings), None)
    from turnstop.composition.runners import turn_runner  # only here: the runtime and the providers

    dialect = dialect_of_module(factory.__module__)
    runner = turn_runner(store, settings, dialect.renderers(), on_finished=dialect.hook(store))
    return FunctionApp(factory(store, settings, runner), runner)
