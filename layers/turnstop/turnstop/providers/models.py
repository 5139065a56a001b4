"""The routes' providers, built once per process, and what a turn's upstream use cost.

``Models`` is what the composition root hands every runner: ``for_turn(turn)`` is the provider
of the route the turn was created with (``turn.input["route"]``; older turns: the default), and
``upstream(...)`` is the record of the provider's usage stored on the finished turn. Providers
are built lazily (a route nobody calls costs no import and no client) and cached. Keys come
from the environment (``api_key_env``, local use) or from Secrets Manager (``api_key_secret``,
through Powertools' parameters utility, cached for five minutes so a rotated key is picked up);
they are never logged, stored or returned.
"""

from __future__ import annotations

import math
import os
import threading
from decimal import Decimal
from typing import Any, cast

from turnstop.core.turn import Turn, Usage
from turnstop.providers import registry
from turnstop.providers.base import ModelProvider, ModelRequest
from turnstop.providers.config import ModelRoutes, ModelsConfigError, Route

SECRET_MAX_AGE_S = 300


def api_key(route: Route) -> str | None:
    """The route's key, from where the route says (None: the route sends none)."""
    if route.api_key_env:
        value = os.environ.get(route.api_key_env)
        if not value:
            raise ModelsConfigError(
                f"TURNSTOP_MODELS: routes.{route.name}.api_key_env: the environment variable "
                f"{route.api_key_env} is not set"
            )
        return value
    if route.api_key_secret:
        from aws_lambda_powertools.utilities import parameters  # lazy: only routes with a secret pay for it

        value = parameters.get_secret(route.api_key_secret, max_age=SECRET_MAX_AGE_S)
        return value if isinstance(value, str) else bytes(value).decode()
    return None


def build(route: Route, *, scripted_step_ms: int, key: str | None = None) -> ModelProvider:
    """The provider a route names (``providers.registry``), with its key; a provider's module is
    imported only when a route uses it."""
    entry = registry.find(route.provider)
    if entry is None:
        raise ModelsConfigError(f"TURNSTOP_MODELS: routes.{route.name}.provider: unknown provider {route.provider}")
    cls = entry.cls(remote=route.remote)
    if entry.built_with == "key":
        return cast(ModelProvider, cls(route, key))
    if entry.built_with == "pace":
        return cast(ModelProvider, cls(route, scripted_step_ms))
    return cast(ModelProvider, cls(route))


def estimate_tokens(text: str) -> int:
    """A provider-neutral token estimate: about four characters a token, never fewer than words."""
    return max(len(text.split()), math.ceil(len(text) / 4))


def estimate_input(source: object, request: ModelRequest) -> int:
    """What a request sends the model, in tokens: the provider's own estimate where it has one
    (the scripted model counts words), else about four characters a token."""
    own = getattr(source, "estimate_input_tokens", None)
    if own is not None:
        return int(own(request))
    parts = [request.instructions or "", *(m.content for m in request.history), request.input]
    return sum(estimate_tokens(p) for p in parts)


class Models:
    def __init__(self, routes: ModelRoutes, *, scripted_step_ms: int) -> None:
        self.routes = routes
        self.scripted_step_ms = scripted_step_ms
        self._built: dict[tuple[str, str | None], ModelProvider] = {}
        self._lock = threading.Lock()

    def check(self) -> None:
        """Start-up check: every route's key can be found (the error names the route)."""
        for route in self.routes.routes.values():
            if route.api_key_env:
                api_key(route)

    def route_of(self, turn: Turn) -> Route:
        """The route a turn was created with (a turn from before routes: its model's name)."""
        named = turn.input.get("route") or turn.input.get("resolved_model") or turn.input.get("model")
        return (self.routes.get(str(named)) if named else None) or self.routes.default_route

    def provider(self, route: Route) -> ModelProvider:
        """The route's provider with its current key: a rotated secret (read through Powertools'
        cache, at most five minutes old) gets a provider of its own; no network call holds the lock."""
        entry = registry.find(route.provider)
        key = api_key(route) if entry is not None and entry.built_with == "key" else None
        with self._lock:
            built = self._built.get((route.name, key))
            if built is None:
                for old in [k for k in self._built if k[0] == route.name]:
                    del self._built[old]  # the key it was built with has been rotated away
                built = self._built[(route.name, key)] = build(route, scripted_step_ms=self.scripted_step_ms, key=key)
            return built

    def for_turn(self, turn: Turn) -> ModelProvider:
        return self.provider(self.route_of(turn))

    def upstream(self, turn: Turn, usage: Usage, estimated: bool, output: str = "") -> dict[str, Any]:
        """What the provider used for ``turn``, and its price: stored on the finished turn. An
        estimate of a network provider's output counts ``output`` its way (``estimate_tokens``)."""
        route = self.route_of(turn)
        if estimated and route.provider != "scripted" and output:
            usage = Usage(usage.input_tokens, max(usage.output_tokens, estimate_tokens(output)))
        per_in, per_out = route.prices.per_token()
        cost = per_in * usage.input_tokens + per_out * usage.output_tokens
        record: dict[str, Any] = {
            **usage.to_item(),
            "estimated": estimated,
            "route": route.name,
            "provider": route.provider,
            "model": route.model,
            "cost_usd": _amount(cost),
        }
        return record


def _amount(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text
