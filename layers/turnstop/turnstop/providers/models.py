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
from typing import Any

from turnstop.core.turn import Turn, Usage
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


def build(route: Route, *, scripted_step_ms: int) -> ModelProvider:
    """The provider a route names (the network providers are imported only when used)."""
    if route.provider == "scripted":
        from turnstop.providers.scripted import ScriptedProvider

        return ScriptedProvider(route, scripted_step_ms)
    if route.provider == "openai-chat":
        from turnstop.providers.openai_chat import OpenAIChatProvider

        return OpenAIChatProvider(route, api_key(route))
    if route.provider == "bedrock-converse":
        from turnstop.providers.bedrock_converse import BedrockConverseProvider

        return BedrockConverseProvider(route, None)
    if route.provider == "openai-responses":
        from turnstop.providers.openai_responses import OpenAIResponsesProvider

        return OpenAIResponsesProvider(route, api_key(route))
    if route.provider == "external":
        from turnstop.providers.external import ExternalProvider

        return ExternalProvider(route)
    raise ModelsConfigError(f"TURNSTOP_MODELS: routes.{route.name}.provider: unknown provider {route.provider}")


def estimate_tokens(text: str) -> int:
    """A provider-neutral token estimate: about four characters a token, never fewer than words."""
    return max(len(text.split()), math.ceil(len(text) / 4))


class Models:
    def __init__(self, routes: ModelRoutes, *, scripted_step_ms: int) -> None:
        self.routes = routes
        self.scripted_step_ms = scripted_step_ms
        self._built: dict[str, ModelProvider] = {}
        self._lock = threading.Lock()

    def check(self) -> None:
        """Start-up check: every route's key can be found (the error names the route)."""
        for route in self.routes.routes.values():
            if route.api_key_env:
                api_key(route)

    def route_of(self, turn: Turn) -> Route:
        return self.routes.get(turn.input.get("route")) or self.routes.default_route

    def provider(self, route: Route) -> ModelProvider:
        with self._lock:
            built = self._built.get(route.name)
            if built is None:
                built = self._built[route.name] = build(route, scripted_step_ms=self.scripted_step_ms)
            return built

    def for_turn(self, turn: Turn) -> ModelProvider:
        return self.provider(self.route_of(turn))

    def estimate_input_tokens(self, route: Route, request: ModelRequest) -> int:
        if route.provider == "scripted":
            from turnstop.providers.scripted import input_tokens

            return input_tokens(request)
        parts = [request.instructions or "", *(m.content for m in request.history), request.input]
        return sum(estimate_tokens(p) for p in parts)

    def upstream(self, turn: Turn, usage: Usage, estimated: bool, output: str = "") -> dict[str, Any]:
        """What the provider used for ``turn``, and its price: stored on the finished turn. An
        estimate of a network provider's output counts ``output`` its way (``estimate_tokens``)."""
        route = self.route_of(turn)
        if estimated and route.provider != "scripted" and output:
            usage = Usage(usage.input_tokens, max(usage.output_tokens, estimate_tokens(output)))
        per_in, per_out = route.prices.per_token()
        cost = per_in * usage.input_tokens + per_out * usage.output_tokens
        record: dict[str, Any] = {
            **usage.to_item(), "estimated": estimated, "route": route.name, "provider": route.provider,
            "model": route.model, "cost_usd": _amount(cost),
        }  # fmt: skip
        return record


def _amount(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text
