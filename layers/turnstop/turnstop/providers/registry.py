"""The one list of model providers a route may name (``TURNSTOP_MODELS``'s ``"provider"``).

Each provider is one line: its name, the class that serves it (imported only when a route uses
it), the route fields it requires, and what its class is built with. Routing reads this list:
``providers.config`` validates routes against it, ``providers.models`` builds a route's provider
from it. Adding a provider is its module, one line here, and its tests (docs/architecture.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal

__all__ = ["PROVIDERS", "Provider", "find", "names"]

# What a provider's class is built with besides its route: nothing, the route's API key (read by
# ``providers.models.api_key``, re-read when a secret rotates), or the scripted model's pace.
BuiltWith = Literal["route", "key", "pace"]


@dataclass(frozen=True)
class Provider:
    name: str
    serves: str  # "module:Class", built as Class(route), Class(route, key) or Class(route, step_ms)
    required: tuple[str, ...] = ()  # route fields it cannot do without (validated at start-up)
    built_with: BuiltWith = "route"
    remote: str | None = None  # "module:Class" serving its ``"remote": true`` routes

    def cls(self, remote: bool = False) -> type:
        module, _, name = (self.remote if remote and self.remote else self.serves).partition(":")
        found: type = getattr(importlib.import_module(module), name)
        return found


PROVIDERS: tuple[Provider, ...] = (
    Provider("scripted", "turnstop.providers.scripted:ScriptedProvider", built_with="pace"),
    Provider("openai-chat", "turnstop.providers.openai_chat:OpenAIChatProvider", ("base_url", "model"), "key"),
    Provider("bedrock-converse", "turnstop.providers.bedrock_converse:BedrockConverseProvider", ("model",)),
    Provider("openai-responses", "turnstop.providers.openai_responses:OpenAIResponsesProvider", ("model",), "key"),
    Provider(
        "external",
        "turnstop.providers.external:ExternalProvider",
        ("queue",),
        remote="turnstop.providers.remote:RemoteProvider",
    ),
)


def names() -> tuple[str, ...]:
    return tuple(p.name for p in PROVIDERS)


def find(name: str) -> Provider | None:
    return next((p for p in PROVIDERS if p.name == name), None)
