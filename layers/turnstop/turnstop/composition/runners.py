"""The composition root: every function and the local runtime build their turn runners here,
so the model behind a turn is chosen in one place (``TURNSTOP_MODELS``, docs/models.md).

``models(settings)`` validates the routes once per process (a bad document fails the cold
start with an error naming the field); ``turn_runner(...)`` wires a ``TurnRunner`` to them.
A chat reply runs the scripted chat agent in front of the route's model (a planned action's
reply is the agent's own words), unless the route is an agent of the platform's own (external).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache

from turnstop.core.turn import Turn, TurnEnd
from turnstop.platform.settings import Settings
from turnstop.providers.base import ModelProvider
from turnstop.providers.config import routes_for
from turnstop.providers.models import Models
from turnstop.runtime.keeper import Cadence
from turnstop.runtime.model import Model
from turnstop.runtime.renderer import Renderer
from turnstop.runtime.runner import TurnRunner
from turnstop.store import Store

__all__ = ["models", "turn_runner"]


@lru_cache(maxsize=4)
def _models(value: str | None, scripted_step_ms: int) -> Models:
    built = Models(routes_for(value), scripted_step_ms=scripted_step_ms)
    built.check()
    return built


def models(settings: Settings) -> Models:
    """The routes' providers for these settings (validated on first use, then cached)."""
    return _models(settings.models, settings.scripted_step_ms)


def turn_runner(
    store: Store,
    settings: Settings,
    renderers: Mapping[str, Renderer],
    *,
    on_finished: Callable[[Turn, TurnEnd], None] | None = None,
) -> TurnRunner:
    """A runner for turns of ``renderers``' kinds, its model chosen per turn by its route."""
    from turnstop.dialects.chat.renderer import REPLY_KIND

    chosen = models(settings)

    def model_for(turn: Turn) -> ModelProvider | Model:
        provider = chosen.for_turn(turn)
        if turn.kind == REPLY_KIND and chosen.route_of(turn).provider != "external":  # an agent plans for itself
            from turnstop.dialects.chat.agent import AgentModel

            return AgentModel(provider, settings.scripted_step_ms)
        return provider

    return TurnRunner(
        store,
        model_for,
        renderers=renderers,
        lease_ms=settings.lease_ms,
        cadence=Cadence.from_settings(settings),
        on_finished=on_finished,
        upstream=chosen.upstream,
    )
