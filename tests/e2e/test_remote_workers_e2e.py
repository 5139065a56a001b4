"""Remote workers (docs/agents.md): a remote route's turns served by a worker in another
process, through the worker API of a real local runtime, read through the sessions dialect."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import (
    LAYER_ON_PATH,
    ChildProcess,
    LocalApi,
    all_store_kinds,
    auth,
    serve,
    session_turn,
    sse_events,
    text_of,
)

WORKER_KEY = "tw_e2e_worker_key_0123456789abcdef"
QUEUE = "remote-q"
IDLE_TIMEOUT_S = 5
ROUTES = {
    "default": "remote",
    "routes": {
        "remote": {
            "provider": "external",
            "queue": QUEUE,
            "remote": True,
            "idle_timeout_s": IDLE_TIMEOUT_S,
            "worker_key_sha256": hashlib.sha256(WORKER_KEY.encode()).hexdigest(),
            "price_per_million": {"input": 3, "output": 15},
        }
    },
}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    env = {"TURNSTOP_MODELS": json.dumps(ROUTES), "TURNSTOP_CANCEL_CHECK_MS": "100"}
    with serve(tmp_path_factory.mktemp("state-remote"), all_store_kinds()[0], extra_env=env) as local:
        yield local


class Worker(ChildProcess):
    """``tests.e2e.remote_worker`` in a process of its own, ready once it says so."""

    def __init__(self, api: LocalApi) -> None:
        super().__init__("tests.e2e.remote_worker", api.url, WORKER_KEY, QUEUE, env=LAYER_ON_PATH)
        self.expect("READY")


@pytest.fixture
def worker(api: LocalApi) -> Iterator[Worker]:
    running = Worker(api)
    yield running
    running.stop()


def test_a_session_streams_the_remote_workers_text(api: LocalApi, worker: Worker) -> None:
    events = session_turn(api, "quick question")
    assert events[-1]["event"] == "message.completed", events[-1]
    assert text_of(events) == "hello from a remote worker: quick question"
    usage = events[-1]["data"]["usage"]  # the worker's own counts, billed as a provider's
    assert (usage["input_tokens"], usage["output_tokens"]) == (5, 7)
    assert worker.expect("CLAIMED").startswith("CLAIMED off_")


def test_the_llm_dialect_runs_a_remote_turn_through_the_openai_sdk(api: LocalApi, worker: Worker) -> None:
    import openai

    with openai.OpenAI(api_key=api.key, base_url=f"{api.url}/api/v1/llm", max_retries=0) as oa:
        done = oa.responses.create(model="remote", input="quick llm")
    assert done.status == "completed"
    assert done.output_text == "hello from a remote worker: quick llm"
    assert done.usage is not None and (done.usage.input_tokens, done.usage.output_tokens) == (5, 7)


def test_a_cancel_mid_tool_reaches_the_worker_and_its_later_emits_are_refused(api: LocalApi, worker: Worker) -> None:
    turn: dict[str, str] = {}

    def cancel_in_tool(delta: str, session: str, rid: str) -> bool:
        if "[tool] slow_tool" not in delta:
            return False
        turn.update(session=session, rid=rid)
        worker.expect("IN_TOOL")
        c = httpx.post(f"{api.url}/v1/sessions/{session}/responses/{rid}/cancel", headers=auth(api))
        assert c.status_code == 202, c.text
        return True

    events = session_turn(api, "slow question", cancel_in_tool)
    assert events[-1]["event"] == "message.cancelled", events[-1]
    worker.expect("TOOL_SAW_CANCEL")  # its cancel_event was set by a heartbeat's answer
    worker.expect("REFUSED_LOCALLY")
    assert worker.expect("SERVER_SAYS") == 'SERVER_SAYS {"accepted": false, "cancelled": true}'
    assert "AFTER_CANCEL" not in json.dumps(events)
    replay_url = f"{api.url}/v1/sessions/{turn['session']}/responses/{turn['rid']}/events"
    with httpx.stream("GET", replay_url, params={"after": 0}, headers=auth(api), timeout=60) as r:
        replay = list(sse_events(r.iter_lines()))  # a reader arriving after the refused emit
    assert replay[-1]["event"] == "message.cancelled"
    assert "AFTER_CANCEL" not in json.dumps(replay) and "slow_tool" in json.dumps(replay)


def test_a_worker_that_dies_fails_the_turn_by_the_routes_idle_timeout(api: LocalApi, worker: Worker) -> None:
    def kill_in_tool(delta: str, session: str, rid: str) -> bool:
        if "[tool] slow_tool" not in delta:
            return False
        worker.expect("IN_TOOL")
        worker.stop()
        return True

    events = session_turn(api, "slow question", kill_in_tool)
    assert events[-1]["event"] == "message.failed", events[-1]
    assert "upstream_timeout" in json.dumps(events[-1]["data"])


def test_a_handler_that_hangs_while_its_worker_lives_fails_the_turn_and_is_told_to_stop(
    api: LocalApi, worker: Worker
) -> None:
    events = session_turn(api, "hang on")  # the worker keeps asking, but its handler shows no life
    assert events[-1]["event"] == "message.failed", events[-1]
    assert "upstream_timeout" in json.dumps(events[-1]["data"])
    worker.expect("HANGING")
    worker.expect("HANG_TOLD_TO_STOP")  # the answer to its next question set the cancel event


def test_a_handler_that_heartbeats_outlives_the_idle_timeout(api: LocalApi, worker: Worker) -> None:
    events = session_turn(api, f"beat for longer than {IDLE_TIMEOUT_S} s")
    assert events[-1]["event"] == "message.completed", events[-1]
    assert text_of(events) == "still here"


def test_two_workers_never_get_the_same_offer(api: LocalApi, tmp_path: Path) -> None:
    workers = [Worker(api), Worker(api)]
    try:
        with ThreadPoolExecutor(4) as pool:
            lasts = list(pool.map(lambda i: session_turn(api, f"quick {i}")[-1], range(6)))
        ends = [e["event"] for e in lasts]
        assert ends == ["message.completed"] * 6, lasts
        claims: list[str] = []
        for w in workers:
            claims += [line for line in w.stop() if line.startswith("CLAIMED")]
        assert len(claims) == 6 and len(set(claims)) == 6  # every offer claimed once, by one worker
    finally:
        for w in workers:
            w.stop()


def test_the_worker_api_refuses_a_wrong_key(api: LocalApi) -> None:
    r = httpx.post(f"{api.url}/v1/workers/{QUEUE}/claim", headers={"Authorization": f"Bearer {api.key}"})
    assert r.status_code == 401
