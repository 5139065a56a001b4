"""The provider seam in the runner: what the model is asked, that a cancel aborts the call in
any phase, the provider's usage on a finished turn, and the platform's upstream cost recorded
on every turn (a cancelled one's marked as an estimate). Routing (TURNSTOP_MODELS) errors name
the field."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cases.fixtures import Env
from tests.cases.turns import LEASE_MS, cancel, events, eventually, runner, start
from turnstop.core.turn import Status, Usage
from turnstop.providers.base import (
    CallAborted,
    Chunk,
    ModelRequest,
    ProviderUsage,
    UpstreamError,
    UpstreamErrorKind,
)
from turnstop.providers.config import DEFAULT_ROUTES, ModelsConfigError, load, parse
from turnstop.providers.models import Models
from turnstop.providers.scripted import ScriptedProvider
from turnstop.runtime.runner import TurnRunner


class HeldCall:
    """A call that streams ``words`` then holds (a silent prefill when ``words`` is 0) until
    aborted; records what it was asked and whether it was aborted."""

    def __init__(
        self,
        request: ModelRequest,
        words: int,
        hold: bool,
        usage: ProviderUsage | None,
        finish: str = "stop",
        fail: UpstreamError | None = None,
    ) -> None:
        self.request, self.words, self.hold, self.fail = request, words, hold, fail
        self.finish_reason: str | None = None
        self.usage: ProviderUsage | None = None
        self._final_usage, self._finish = usage, finish
        self.aborted = threading.Event()
        self.holding = threading.Event()

    def abort(self) -> None:
        self.aborted.set()

    def __iter__(self) -> Iterator[Chunk]:
        for i in range(self.words):
            if self.aborted.is_set():
                raise CallAborted
            yield Chunk(f"w{i} ")
        if self.fail is not None:
            raise self.fail
        if self.hold:
            self.holding.set()
            if not self.aborted.wait(30):
                raise AssertionError("never aborted")
            raise CallAborted
        self.finish_reason, self.usage = self._finish, self._final_usage


class FakeProvider:
    def __init__(self, **call: Any) -> None:
        self.call_kw = call
        self.calls: list[HeldCall] = []

    def open(self, request: ModelRequest) -> HeldCall:
        call = HeldCall(request, **{"words": 3, "hold": False, "usage": None, **self.call_kw})
        self.calls.append(call)
        return call


def run_with(env: Env, provider: Any, upstream: Any = None) -> TurnRunner:
    return runner(env, provider, owner="w", upstream=upstream)


def models() -> Models:
    return Models(DEFAULT_ROUTES, scripted_step_ms=0)


def test_the_model_is_asked_the_turns_input_instructions_cap_and_sampling(env: Env) -> None:
    turn = start(env, "Say hi")
    provider = FakeProvider(usage=ProviderUsage(7, 3, cached_tokens=2, reasoning_tokens=1))
    runner = run_with(env, provider)
    turn = env.store.turns.with_input(turn)
    turn = turn.replace(input={**turn.input, "instructions": "Be brief.", "max_output_tokens": 9, "temperature": 0.2})
    claimed = env.store.turns.claim(turn.id, runner.owner, LEASE_MS).replace(input=turn.input)
    assert runner.run(claimed) == "completed"
    request = provider.calls[0].request
    assert (request.input, request.instructions, request.max_output_tokens) == ("Say hi", "Be brief.", 9)
    assert dict(request.sampling) == {"temperature": 0.2}
    head = env.store.turns.get(turn.id)
    assert head is not None
    # the provider's own usage, not a word count
    assert head.usage == Usage(7, 3, cached_tokens=2, reasoning_tokens=1)


@pytest.mark.parametrize("words", [0, 2], ids=["cancel during a silent prefill", "cancel mid-stream"])
def test_a_cancel_aborts_the_model_call_in_any_phase(env: Env, words: int) -> None:
    turn = start(env, "Write a long essay")
    provider = FakeProvider(words=words, hold=True)
    runner = run_with(env, provider, upstream=models().upstream)
    done: list[str] = []
    thread = threading.Thread(target=lambda: done.append(runner.handle(turn.id)))
    thread.start()
    eventually(lambda: provider.calls and provider.calls[0].holding.is_set(), "the call to hold")
    cancel(env, turn.id)
    thread.join(30)
    assert done == ["cancelled"]
    assert provider.calls[0].aborted.is_set()  # the upstream call itself was stopped, not just unread
    head = env.store.turns.get(turn.id)
    assert head is not None and head.upstream is not None
    # nobody is billed, but what the provider was asked to do is the platform's cost: estimated
    assert head.upstream["estimated"] is True
    assert head.upstream["output_tokens"] == words and head.upstream["route"] == "turnstop:scripted"
    assert events(env, turn.id)[-1].type == "response.cancelled"  # a stateless turn's terminal event


def test_a_completed_turn_records_the_providers_usage_and_its_price(env: Env) -> None:
    turn = start(env, "Say hi")
    provider = FakeProvider(usage=ProviderUsage(1_000_000, 500_000))
    assert run_with(env, provider, upstream=models().upstream).handle(turn.id) == "completed"
    head = env.store.turns.get(turn.id)
    assert head is not None and head.upstream is not None
    # the scripted route's prices: $20 per million in, $40 per million out
    assert head.upstream == {
        "input_tokens": 1_000_000,
        "output_tokens": 500_000,
        "estimated": False,
        "route": "turnstop:scripted",
        "provider": "scripted",
        "model": "scripted",
        "cost_usd": "40",
    }


def test_the_cap_reached_upstream_ends_the_turn_incomplete(env: Env) -> None:
    turn = start(env, "Say hi")
    provider = FakeProvider(usage=ProviderUsage(2, 3), finish="length")
    assert run_with(env, provider).handle(turn.id) == "incomplete"


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (UpstreamErrorKind.TIMEOUT, "upstream_timeout"),
        (UpstreamErrorKind.RATE_LIMITED, "upstream_rate_limited"),
        (UpstreamErrorKind.SERVER, "upstream_error"),
        (UpstreamErrorKind.BAD_RESPONSE, "upstream_error"),
    ],
)
def test_an_upstream_failure_fails_the_turn_with_a_safe_message(env: Env, kind: UpstreamErrorKind, code: str) -> None:
    turn = start(env, "Say hi")
    provider = FakeProvider(fail=UpstreamError(kind, f"{kind.value} (HTTP 503)", status=503))
    assert run_with(env, provider, upstream=models().upstream).handle(turn.id) == "failed"
    head = env.store.turns.get(turn.id)
    assert head is not None and head.error is not None
    assert head.error["code"] == code and "503" in head.error["message"]
    assert head.upstream is not None and head.upstream["estimated"] is True  # what it streamed is still a cost
    assert provider.calls[0].aborted.is_set()  # a call that failed is closed, never left open


def test_the_scripted_provider_caps_at_the_request_and_stops_at_once_on_abort() -> None:
    route = DEFAULT_ROUTES.default_route
    call = ScriptedProvider(route, 0).open(ModelRequest("Write a 10-word note", max_output_tokens=4))
    assert [c.text for c in call] == ["the ", "cipher ", "key ", "turns "]
    assert (call.finish_reason, call.usage) == ("length", ProviderUsage(4, 4))
    slow = ScriptedProvider(route, 60_000).open(ModelRequest("Write a 10-word note"))
    it = iter(slow)
    assert next(it).text == "the "
    threading.Timer(0.01, slow.abort).start()  # the next word is a minute away; the abort ends the wait
    with pytest.raises(CallAborted):
        next(it)


@pytest.mark.parametrize(
    ("document", "names"),
    [
        ({"routes": {}}, "routes:"),
        ({"routes": {"a": {"provider": "nope"}}}, "routes.a.provider"),
        ({"routes": {"a": {"provider": "openai-chat", "model": "m"}}}, "routes.a.base_url"),
        ({"routes": {"a": {"provider": "openai-chat", "model": "m", "base_url": "ftp://x"}}}, "routes.a.base_url"),
        ({"routes": {"a": {"provider": "scripted", "max_output_tokens": "9"}}}, "routes.a.max_output_tokens"),
        (
            {"routes": {"a": {"provider": "scripted", "price_per_million": {"input": -1}}}},
            "routes.a.price_per_million.input",
        ),
        ({"routes": {"a": {"provider": "scripted", "api_kye_env": "K"}}}, "routes.a.api_kye_env"),
        ({"default": "b", "routes": {"a": {"provider": "scripted"}}}, "default"),
    ],
)
def test_a_bad_models_document_is_refused_naming_the_field(document: dict[str, Any], names: str) -> None:
    with pytest.raises(ModelsConfigError) as refused:
        parse(document)
    assert names in str(refused.value)


def test_the_models_document_is_inline_json_or_a_file_and_keys_come_from_the_environment(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = (
        '{"default": "local", "routes": {"local": {"provider": "openai-chat", "base_url": "http://127.0.0.1:9/v1",'
        ' "model": "m", "api_key_env": "TS_TEST_KEY"}}}'
    )
    path = tmp_path / "models.json"
    path.write_text(doc)
    assert load(doc) == load(str(path))
    assert load(None) is DEFAULT_ROUTES and load("  ") is DEFAULT_ROUTES
    with pytest.raises(ModelsConfigError, match="not valid JSON"):
        load("{nope")
    monkeypatch.delenv("TS_TEST_KEY", raising=False)
    with pytest.raises(ModelsConfigError, match="routes.local.api_key_env: the environment variable TS_TEST_KEY"):
        Models(load(doc), scripted_step_ms=0).check()
    monkeypatch.setenv("TS_TEST_KEY", "sk-secret-value")
    Models(load(doc), scripted_step_ms=0).check()
    assert "sk-secret" not in repr(load(doc).routes["local"])


def test_a_session_message_racing_a_cancelled_turn_follows_the_sessions_latest_turn(env: Env) -> None:
    from turnstop.core import scopes
    from turnstop.core.ids import new_id
    from turnstop.core.records import NewTurn
    from turnstop.dialects.sessions.renderer import SESSION_KIND
    from turnstop.dialects.sessions.renderer import created_event as session_created
    from turnstop.store.sessions import NO_PREVIOUS

    sid = "sess_race0001"
    env.store.sessions.create(sid, "t1", True, 3_600_000)

    def new(previous: str) -> NewTurn:
        return NewTurn(
            id=new_id("msg_"),
            kind=SESSION_KIND,
            tenant="t1",
            scope=scopes.session(sid),
            grace_ms=120_000,
            input={"prompt": "hi", "previous_turn": previous},
        )

    # B's caller read the session while it had no turn; then A started and was cancelled
    a = env.store.turns.start(new(NO_PREVIOUS), session_created, run_as="w", lease_ms=LEASE_MS)
    cancel(env, a.id)
    b = env.store.turns.start(new(NO_PREVIOUS), session_created, run_as="w", lease_ms=LEASE_MS)
    # B took the cancelled A's slot, and follows A (its conversation has A in it)
    assert b.input["previous_turn"] == a.id
    session = env.store.sessions.get(sid)
    assert session is not None and session.active_turn == b.id and session.last_turn == b.id


def test_a_tasks_billed_lines_add_up_to_what_it_kept_even_when_its_use_passed_its_hold() -> None:
    from decimal import Decimal

    from turnstop.core import scopes
    from turnstop.core.turn import Turn
    from turnstop.dialects.tasks.wire import usage_and_billing

    turn = Turn(
        id="task_x",
        kind="task",
        tenant="t",
        scope=scopes.TASKS,
        stored_status=Status.COMPLETED,
        created_at=0,
        finished_at=1,
        usage=Usage(900, 100),
        input={
            "charged_credits": "0.5",
            "resolved_model": "r",
            "price_credits": {"input_token": "0.001", "output_token": "0.002"},
        },
    )
    usage, billing = usage_and_billing(turn)  # its use cost 0.9 + 0.2 = 1.1 credits, above the 0.5 held
    billed = sum(Decimal(line["billed_amount_credits"]) for line in usage["lines"])
    assert billed == Decimal(usage["credits"]) == Decimal("0.5") == Decimal(billing["charged_credits"])


def test_a_lost_workers_turn_records_an_estimate_of_what_its_call_cost(env: Env) -> None:
    from tests.cases.turns import die_after_two_words

    turn = start(env)
    die_after_two_words(env, turn)
    env.clock.advance(seconds=31)
    assert run_with(env, FakeProvider(), upstream=models().upstream).handle(turn.id) == "failed"
    head = env.store.turns.get(turn.id)
    assert head is not None and head.upstream is not None
    assert head.upstream["estimated"] is True and head.upstream["output_tokens"] == 2  # what it had committed
