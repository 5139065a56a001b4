"""Remote routes (docs/agents.md): the offer item's rules, one conditional write each. One
claim wins an offer; emits need the claim's token and stop at the cancel; an unacknowledged
claim is offered again and its token revoked; a remote route needs its worker key's hash."""

from __future__ import annotations

import hashlib

import pytest

from tests.cases.fixtures import Env
from turnstop.providers.config import ModelsConfigError, parse

QUEUE = "q"
DIGEST = hashlib.sha256(b"worker-key").hexdigest()


def test_one_claim_wins_an_offer_and_only_its_token_may_emit(env: Env) -> None:
    offers = env.store.offers
    offers.put(QUEUE, "off_1", {"input": "hi"})
    first = offers.claim(QUEUE, "token-a")
    assert first == {"turn_id": "off_1", "request": {"input": "hi"}}
    assert offers.claim(QUEUE, "token-b") is None  # claimed already: no second worker gets it
    assert offers.emit(QUEUE, "off_1", "token-b", [["text", "x"]]) is False
    assert offers.emit(QUEUE, "off_1", "token-a", [["text", "x"]]) is True
    item = offers.read(QUEUE, "off_1") or {}
    assert item["events"] == [["text", "x"]] and item["n"] == 1


def test_the_cancel_refuses_every_later_emit_and_the_finish(env: Env) -> None:
    offers = env.store.offers
    offers.put(QUEUE, "off_2", {"input": "hi"})
    assert offers.claim(QUEUE, "t") is not None
    offers.cancel(QUEUE, "off_2")
    assert offers.emit(QUEUE, "off_2", "t", [["text", "late"]]) is False
    assert offers.emit(QUEUE, "off_2", "t", [], finish={"reason": "stop"}) is False
    assert (offers.read(QUEUE, "off_2") or {})["events"] == []


def test_an_unacknowledged_claim_is_offered_again_and_its_token_revoked(env: Env) -> None:
    offers = env.store.offers
    offers.put(QUEUE, "off_3", {"input": "hi"})
    assert offers.claim(QUEUE, "lost") is not None
    assert offers.reopen(QUEUE, "off_3", "lost") is True
    assert offers.claim(QUEUE, "second") is not None
    assert offers.emit(QUEUE, "off_3", "lost", []) is False
    assert offers.emit(QUEUE, "off_3", "second", []) is True
    assert offers.reopen(QUEUE, "off_3", "second") is False  # acknowledged: it stays the second's


def test_the_runner_removes_what_it_read_and_an_ended_offer_is_never_claimed(env: Env) -> None:
    offers = env.store.offers
    offers.put(QUEUE, "off_4", {"input": "hi"})
    offers.claim(QUEUE, "t")
    offers.emit(QUEUE, "off_4", "t", [["text", "a"], ["thinking", "b"]])
    offers.consumed(QUEUE, "off_4", 1)
    assert (offers.read(QUEUE, "off_4") or {})["events"] == [["thinking", "b"]]
    offers.put(QUEUE, "off_5", {"input": "gone"})
    offers.cancel(QUEUE, "off_5", done=True)
    assert offers.claim(QUEUE, "u") is None


@pytest.mark.parametrize(
    "route",
    [
        {"provider": "external", "queue": "q", "remote": True},
        {"provider": "external", "queue": "q", "remote": True, "worker_key_sha256": "abc"},
        {"provider": "external", "queue": "q", "remote": True, "worker_key_sha256": DIGEST, "handler": "m:f"},
        {"provider": "scripted", "remote": True, "worker_key_sha256": DIGEST},
    ],
)
def test_a_remote_route_needs_its_worker_keys_hash_and_no_handler(route: dict[str, object]) -> None:
    with pytest.raises(ModelsConfigError):
        parse({"routes": {"r": route}})


def test_a_remote_route_is_served_by_the_remote_provider() -> None:
    from turnstop.providers.models import build
    from turnstop.providers.remote import RemoteProvider

    routes = parse(
        {"routes": {"r": {"provider": "external", "queue": "q", "remote": True, "worker_key_sha256": DIGEST}}}
    )
    assert isinstance(build(routes.routes["r"], scripted_step_ms=0), RemoteProvider)


def test_an_offer_whose_runner_is_gone_refuses_the_workers_emits(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from turnstop.store import offers as module

    offers = env.store.offers
    offers.put(QUEUE, "off_6", {"input": "hi"})
    offers.claim(QUEUE, "t")
    assert offers.emit(QUEUE, "off_6", "t", []) is True
    monkeypatch.setattr(module, "RUNNER_STALE_MS", -1)  # as if the runner had not read it for long
    assert offers.emit(QUEUE, "off_6", "t", []) is False
    monkeypatch.setattr(module, "RUNNER_STALE_MS", 15_000)
    offers.consumed(QUEUE, "off_6", 0)  # the runner says it is alive
    assert offers.emit(QUEUE, "off_6", "t", []) is True


def test_a_silent_workers_question_reads_without_counting_as_life(env: Env) -> None:
    offers = env.store.offers
    offers.put(QUEUE, "off_9", {"input": "hi"})
    assert offers.claim(QUEUE, "t") is not None
    assert offers.still_yours(QUEUE, "off_9", "t") is True
    assert offers.still_yours(QUEUE, "off_9", "other-token") is False
    assert (offers.read(QUEUE, "off_9") or {})["n"] == 0  # a question is not a heartbeat
    offers.cancel(QUEUE, "off_9")
    assert offers.still_yours(QUEUE, "off_9", "t") is False


def test_an_offer_that_is_not_there_or_on_another_queue_is_none(env: Env) -> None:
    offers = env.store.offers
    offers.put(QUEUE, "off_10", {"input": "hi"})
    assert offers.emit(QUEUE, "off_missing", "t", []) is None
    assert offers.emit("another-q", "off_10", "t", []) is None
    assert offers.still_yours("another-q", "off_10", "t") is None
    assert offers.emit(QUEUE, "off_10", "t", []) is False  # there, but not claimed by that token


def test_a_finish_whose_approval_holds_floats_big_numbers_and_deep_values_is_kept_as_sent(env: Env) -> None:
    offers = env.store.offers
    offers.put(QUEUE, "off_11", {"input": "hi"})
    assert offers.claim(QUEUE, "t") is not None
    deep: object = 1
    for _ in range(40):  # deeper than a DynamoDB attribute may nest
        deep = [deep]
    params = {"ratio": 0.5, "big": 10**40, "deep": deep, "text": "\U0001f4a5"}
    asks = {"type": "t", "summary": "s", "confirmation": "c?", "params": params}
    assert offers.emit(QUEUE, "off_11", "t", [], finish={"reason": "stop", "asks": asks}) is True
    assert (offers.read(QUEUE, "off_11") or {})["finished"]["asks"]["params"] == params


def test_the_sample_event_reaches_the_worker_api_which_answers_an_unknown_offer_404(env: Env) -> None:
    import json

    from tests.conftest import ROOT
    from turnstop.platform.settings import Settings
    from turnstop.worker.api import worker_api_app

    event = json.loads((ROOT / "events" / "workers_api.json").read_text())
    route = {
        "provider": "external",
        "queue": "research",
        "remote": True,
        "worker_key_sha256": hashlib.sha256(b"tw_sample_worker_key").hexdigest(),
    }
    settings = Settings(table=env.store.table, models=json.dumps({"routes": {"agent": route}}))
    answer = worker_api_app(env.store, settings).resolve(event, None)
    assert answer["statusCode"] == 404
    assert json.loads(answer["body"])["error"]["message"] == "No such offer on this queue"
