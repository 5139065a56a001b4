"""The one list of turnstop's HTTP APIs: the five dialects, the operators' admin endpoints and
the remote workers' API. Everything that needs "every dialect" derives it from here: the
worker's renderers and after-finish hooks (below), the OpenAPI documents and the local
runtime's documentation pages, and the test that checks the template, the OpenAPI tables, the
command line and the playground against this list (tests/unit/test_dialect_registry.py).

A dialect is declared once, in one line of ``APIS``. Everything else about it is found by
convention in its package ``turnstop.dialects.<name>``: its renderers by turn kind
(``renderer.RENDERERS``), its error shape (``wire.SHAPE``) and, if it has one, its after-finish
hook (``after_finish``: ``"<module>:<factory>"`` in its package). Its OpenAPI table is
``<NAME>`` in ``turnstop_local.openapi.dialects.<name>`` (the local tooling that builds the
documents). Nothing is imported until asked: this module imports only the standard library, so
any function may read the list, and a function that serves one dialect still loads that dialect
only. A dialect brings no function code: its functions run the shared handlers, each naming the
app it serves (``TURNSTOP_APP``, read by ``served``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from turnstop.core.turn import Turn, TurnEnd
    from turnstop.http.errors import ErrorShape
    from turnstop.runtime.renderer import Renderer
    from turnstop.store import Store

__all__ = [
    "APIS",
    "Api",
    "Dialect",
    "after_finish",
    "all_renderers",
    "api_of",
    "apis",
    "dialect_of_module",
    "dialects",
    "load",
    "registered",
    "served",
]

Hook = Callable[["Turn", "TurnEnd"], None]


def load(ref: str) -> Any:
    """The object ``"package.module:name"`` names, its module imported now."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


APP_VARIABLE = "TURNSTOP_APP"


def served(environ: Mapping[str, str] = os.environ) -> Callable[..., Any]:
    """The app factory a function serves: its ``TURNSTOP_APP``, ``"<module>:<factory>"``.

    A dialect's functions share three handlers (``functions/api``, ``functions/cancel``,
    ``functions/stream``); template.yaml names on each function the app it serves. A factory
    is called with the store and the settings (and, if it runs turns in the request, a runner:
    ``turnstop.composition.function_app``)."""
    ref = environ.get(APP_VARIABLE, "")
    if ":" not in ref:
        raise LookupError(
            f"{APP_VARIABLE} must name the app this function serves, as '<module>:<factory>' (got {ref!r})"
        )
    factory = load(ref)
    if not callable(factory):
        raise LookupError(f"{APP_VARIABLE}={ref!r} is not an app factory")
    return factory


@dataclass(frozen=True)
class Api:
    """An HTTP API: its name (its OpenAPI document is ``openapi/<name>.json``) and the path
    prefixes of its routes (a route belongs to the API one of whose prefixes is the route's path
    or a leading run of its segments)."""

    name: str
    prefixes: tuple[str, ...]
    openapi: str = ""  # "module:NAME" of its OpenAPI table; default: the local tooling's module of this name

    def __post_init__(self) -> None:
        if not self.openapi:
            object.__setattr__(self, "openapi", f"turnstop_local.openapi.dialects.{self.name}:{self.name.upper()}")

    def owns(self, path: str) -> bool:
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.prefixes)


@dataclass(frozen=True)
class Dialect(Api):
    """An API whose requests start turns: its package holds its renderers and error shape."""

    package: str = ""  # default: turnstop.dialects.<name>
    after_finish: str | None = None  # "<module of its package>:<factory(store) -> hook>"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.package:
            object.__setattr__(self, "package", f"turnstop.dialects.{self.name}")

    def renderers(self) -> dict[str, Renderer]:
        """Its renderers by turn kind: the kinds of turn the worker runs for it."""
        found: dict[str, Renderer] = load(f"{self.package}.renderer:RENDERERS")
        return found

    def error_shape(self) -> ErrorShape:
        shape: ErrorShape = load(f"{self.package}.wire:SHAPE")
        return shape

    def hook(self, store: Store) -> Hook | None:
        """What runs after one of its turns ends (in the worker), or None."""
        if self.after_finish is None:
            return None
        factory: Callable[[Store], Hook] = load(f"{self.package}.{self.after_finish}")
        return factory(store)


# The order is the OpenAPI documents' (and so the merged document's).
APIS: list[Api] = [
    Dialect("sessions", ("/v1/sessions", "/v1/responses", "/v1/ledger")),
    Dialect("omni", ("/v1/omni-ai",)),
    Dialect("llm", ("/api/v1/llm",)),
    Dialect("tasks", ("/v1/tasks",), after_finish="callbacks:after_finish"),  # queue the task's callback
    Dialect("chat", ("/chat", "/auth"), after_finish="renderer:after_finish"),  # a thread forgets an ended reply
    Api("admin", ("/v1/admin",)),
    Api("workers", ("/v1/workers",)),
]


def apis() -> tuple[Api, ...]:
    return tuple(APIS)


def dialects() -> tuple[Dialect, ...]:
    return tuple(a for a in APIS if isinstance(a, Dialect))


def dialect_of_module(module: str) -> Dialect:
    """The dialect whose package holds ``module``."""
    found = next((d for d in dialects() if module == d.package or module.startswith(d.package + ".")), None)
    if found is None:
        raise LookupError(f"{module} belongs to no registered dialect")
    return found


def api_of(path: str) -> Api | None:
    """The API a route's path belongs to, or None."""
    return next((a for a in APIS if a.owns(path)), None)


@contextmanager
def registered(api: Api) -> Iterator[Api]:
    """``api`` in the list while the block runs (a dialect kept outside the layer: a test's)."""
    if any(a.name == api.name for a in APIS):
        raise ValueError(f"an API named {api.name!r} is already registered")
    APIS.append(api)
    try:
        yield api
    finally:
        APIS.remove(api)


def all_renderers() -> dict[str, Renderer]:
    """Every dialect's renderers by turn kind, for the code that runs turns of any dialect (the
    worker). Chat's are its replies only (a reply whose request died is finished by the worker);
    its actions never reach a worker, only a confirmation starts one."""
    out: dict[str, Renderer] = {}
    for dialect in dialects():
        out.update(dialect.renderers())
    return out


def after_finish(store: Store) -> Hook:
    """The runner's after-finish hook: the hook of the dialect whose renderers run the turn's
    kind (tasks queue their callback; a chat thread forgets its reply once it has ended)."""
    hooks: dict[str, Hook] = {}
    for dialect in dialects():
        hook = dialect.hook(store)
        if hook is not None:
            hooks.update(dict.fromkeys(dialect.renderers(), hook))

    def run(turn: Turn, end: TurnEnd) -> None:
        by_kind = hooks.get(turn.kind)
        if by_kind is not None:
            by_kind(turn, end)

    return run
