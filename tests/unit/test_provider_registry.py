"""A model provider is one line of ``turnstop.providers.registry``: a toy provider added by that
line alone (its module is this test's) is validated by routing, built with its route's key, and
serves a turn the worker runs, aborted like any other."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.cases.fixtures import Env
from turnstop.providers import config, registry
from turnstop.providers.base import CallAborted, Chunk, ModelRequest, ProviderUsage
from turnstop.providers.config import ModelsConfigError, Route
from turnstop.providers.models import Models
from turnstop.providers.registry import Provider


class EchoCall:
    """Says the prompt back, word by word; ``abort`` stops it at the next word."""

    def __init__(self, request: ModelRequest) -> None:
        self.request = request
        self.finish_reason: str | None = None
        self.usage: ProviderUsage | None = None
        self._aborted = threading.Event()

    def __iter__(self) -> Iterator[Chunk]:
        words = self.request.input.split()
        for word in words:
            if self._aborted.is_set():
                raise CallAborted()
            yield Chunk(word + " ")
        self.finish_reason = "stop"
        self.usage = ProviderUsage(len(words), len(words))

    def abort(self) -> None:
        self._aborted.set()


class EchoProvider:
    def __init__(self, route: Route, api_key: str | None) -> None:
        self.route = route
        self.api_key = api_key

    def open(self, request: ModelRequest) -> EchoCall:
        return EchoCall(request)


ECHO = Provider("echo", f"{__name__}:EchoProvider", ("model",), "key")
ROUTES = {"default": "parrot", "routes": {"parrot": {"provider": "echo", "model": "echo-1", "api_key_env": "ECHO_KEY"}}}


@pytest.fixture
def with_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "PROVIDERS", (*registry.PROVIDERS, ECHO))  # its one registry line
    monkeypatch.setenv("ECHO_KEY", "sk-echo")


def test_the_registry_is_routings_list_of_providers() -> None:
    assert registry.names() == ("scripted", "openai-chat", "bedrock-converse", "openai-responses", "external")
    with pytest.raises(ModelsConfigError, match=r"routes\.x\.provider: must be one of scripted, openai-chat, "):
        config.parse({"routes": {"x": {"provider": "echo"}}})


def test_a_provider_registered_in_one_line_is_validated_and_built_with_its_key(with_echo: None) -> None:
    with pytest.raises(ModelsConfigError, match=r"routes\.x\.model: is required for provider echo"):
        config.parse({"routes": {"x": {"provider": "echo"}}})
    routes = config.parse(ROUTES)
    provider = Models(routes, scripted_step_ms=0).provider(routes.default_route)
    assert isinstance(provider, EchoProvider) and provider.api_key == "sk-echo"


def test_a_turn_on_its_route_runs_through_the_worker(with_echo: None, env: Env) -> None:
    from turnstop.core import scopes
    from turnstop.core.events import PendingEvent
    from turnstop.core.records import NewTurn
    from turnstop.dialects.registry import all_renderers
    from turnstop.runtime.keeper import Cadence
    from turnstop.runtime.runner import TurnRunner
    from turnstop.store import Store

    # Given a stateless sessions turn on the echo route
    store = Store(env.store.table, dynamodb=env.client)
    new = NewTurn(
        "resp_echo1",
        "response",
        "acme",
        scopes.STATELESS,
        grace_ms=60_000,
        input={"prompt": "stop button please", "route": "parrot"},
    )
    store.turns.start(new, lambda t: PendingEvent("response.created", {}))
    # When a worker runs it, its model chosen by its route
    models = Models(config.parse(ROUTES), scripted_step_ms=0)
    worker = TurnRunner(
        store,
        models.for_turn,
        renderers=all_renderers(),
        lease_ms=30_000,
        cadence=Cadence(flush_ms=20, check_ms=5, lease_ms=30_000),
        upstream=models.upstream,
    )
    worker.handle("resp_echo1")
    # Then the echo provider answered it
    head = store.turns.head("resp_echo1")
    assert head is not None and head.status.value == "completed"
    assert store.turns.committed_text(head).split() == ["stop", "button", "please"]
    assert head.upstream is not None and (head.upstream["provider"], head.upstream["route"]) == ("echo", "parrot")
