"""The `turnstop` command line end to end: the installed console script, run as a process
against the local runtime over real HTTP. It finds the instance (URL and dev key) from the
state directory alone, as it does after `make run`."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import LocalApi, pump_lines, wait_for

TURNSTOP = Path(sys.executable).parent / "turnstop"
LONG = "Write a 20000-word essay on stop buttons"


def cli_env(api: LocalApi) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURNSTOP_")}
    return {**env, "TURNSTOP_STATE_DIR": str(api.state_dir), "NO_COLOR": "1"}


def turnstop(api: LocalApi, *args: str) -> subprocess.CompletedProcess[str]:
    assert TURNSTOP.exists(), f"{TURNSTOP} is missing: `make install` installs the turnstop command"
    return subprocess.run(
        [str(TURNSTOP), *args], cwd=ROOT, env=cli_env(api), capture_output=True, text=True, timeout=60
    )


def document(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def http(local_api: LocalApi) -> Any:
    with httpx.Client(base_url=local_api.url, headers={"Authorization": f"Bearer {local_api.key}"}, timeout=30) as c:
        yield c


def start_session_turn(http: httpx.Client) -> str:
    """A long session turn; its stream is closed at once (that does not stop the turn)."""
    session = http.post("/v1/sessions", json={"persistent": False}).json()["id"]
    with http.stream("POST", f"/v1/sessions/{session}/messages", json={"message": LONG}) as response:
        assert response.status_code == 200
        return f"{session}/{response.headers['X-Response-Id']}"


def test_tail_follows_a_long_turn_until_a_cancel_from_another_terminal_ends_it(local_api: LocalApi, http: Any) -> None:
    # Given a long sessions turn followed by `turnstop tail`
    turn = start_session_turn(http)
    tail = subprocess.Popen(
        [str(TURNSTOP), "tail", turn, "--json"],
        cwd=ROOT,
        env=cli_env(local_api),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=pump_lines, args=(tail.stdout, lines), daemon=True).start()
    events: list[dict[str, Any]] = []

    def deltas_seen() -> bool:
        while not lines.empty():
            events.append(json.loads(lines.get()))
        return sum(1 for e in events if e["event"] == "message.delta") >= 3

    try:
        wait_for(deltas_seen, "tail to print tokens", timeout=20)
        # When another terminal runs `turnstop cancel`
        cancelled = document(turnstop(local_api, "cancel", turn, "--reason", "operator pressed stop", "--json"))
        assert (cancelled["outcome"], cancelled["http_status"]) == ("cancelling", 202)
        # Then the tail ends with the cancelled event, and exits 0
        assert tail.wait(timeout=20) == 0, tail.stderr.read() if tail.stderr else ""
    finally:
        tail.kill()
    while not lines.empty():
        events.append(json.loads(lines.get()))
    last = events[-1]
    assert (last["event"], last["state"]) == ("message.cancelled", "cancelled")
    assert last["data"]["billed"] is False and last["data"]["cancel"]["reason"] == "operator pressed stop"
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # every event once, in order

    # and status agrees: cancelled, nothing billed
    status = document(turnstop(local_api, "status", turn, "--json"))
    assert (status["state"], status["billed"]) == ("cancelled", False)


class DroppingProxy:
    """A TCP proxy to the local API that cuts its first connection after ``cut_after`` bytes of
    the answer, as a flaky network or a proxy's timeout would, mid-stream."""

    def __init__(self, upstream: str, cut_after: int) -> None:
        self.upstream = ("127.0.0.1", int(upstream.rsplit(":", 1)[1]))
        self.cut_after = cut_after
        self.connections = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            limit = self.cut_after if self.connections == 1 else None
            threading.Thread(target=self.relay, args=(client, limit), daemon=True).start()

    def relay(self, client: socket.socket, limit: int | None) -> None:
        upstream = socket.create_connection(self.upstream)
        threading.Thread(target=self.copy, args=(client, upstream, None), daemon=True).start()
        self.copy(upstream, client, limit)
        for end in (client, upstream):
            end.close()

    @staticmethod
    def copy(source: socket.socket, target: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while limit is None or sent < limit:
                chunk = source.recv(4096 if limit is None else min(4096, limit - sent))
                if not chunk:
                    break
                target.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()


def test_tail_resumes_after_the_connection_drops_without_losing_or_repeating_an_event(
    local_api: LocalApi, http: Any
) -> None:
    # Given a finished 100-word turn, read through a connection that is cut mid-stream
    session = http.post("/v1/sessions", json={"persistent": False}).json()["id"]
    with http.stream("POST", f"/v1/sessions/{session}/messages", json={"message": "Write a 100-word note"}) as r:
        turn = f"{session}/{r.headers['X-Response-Id']}"
        expected = sum(1 for line in r.iter_lines() if line.startswith("id: "))
    proxy = DroppingProxy(local_api.url, cut_after=4000)
    try:
        # When `turnstop tail` follows it
        done = turnstop(local_api, "tail", turn, "--json", "--base-url", proxy.url, "--api-key", local_api.key)
    finally:
        proxy.close()
    # Then it reconnected once, resumed after the last event it had, and saw every event exactly once
    assert done.returncode == 0, done.stderr
    assert proxy.connections == 2 and "resuming after event" in done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, expected + 1))
    assert events[-1]["state"] == "completed"


def test_cancel_of_a_task_records_its_reason_and_refunds_it(local_api: LocalApi, http: Any) -> None:
    task = http.post(
        "/v1/tasks", json={"capability": "text.generate", "model": "auto", "input": {"prompt": LONG}}
    ).json()["task_id"]
    answer = document(turnstop(local_api, "cancel", task, "--reason", "the customer closed the report", "--json"))
    assert answer["dialect"] == "tasks" and answer["outcome"] in ("cancelling", "cancelled")
    # the tail of a polled dialect ends with the final state
    tail = turnstop(local_api, "tail", task, "--interval", "0.1", "--json")
    assert tail.returncode == 0, tail.stderr
    assert json.loads(tail.stdout.strip().splitlines()[-1])["state"] == "cancelled"
    status = document(turnstop(local_api, "status", task, "--json"))
    assert status["state"] == "cancelled"
    assert status["error"]["message"] == "the customer closed the report"
    assert status["billing"]["refunded_credits"] == status["billing"]["charged_credits"]
    entries = document(turnstop(local_api, "ledger", "--turn", task, "--json"))["data"]
    assert sorted(e["kind"] for e in entries) == ["charge", "refund"]


def test_a_bulk_cancel_stops_every_in_flight_turn_of_an_end_user(local_api: LocalApi, http: Any) -> None:
    # Given three background responses running for one end user, and an operator's key made by the CLI
    user = f"cli-user-{uuid.uuid4().hex[:8]}"
    admin = turnstop(local_api, "keys", "create", "--tenant", "dev", "--accounts", "1", "--admin").stdout.strip()
    assert admin.startswith("ts_")
    ids = [
        http.post(
            "/api/v1/llm/responses",
            json={"model": "turnstop:scripted", "input": LONG, "background": True},
            headers={"X-On-Behalf-Of": user},
        ).json()["id"]
        for _ in range(3)
    ]
    # When the operator cancels the end user's scope
    report = document(
        turnstop(local_api, "cancel", "--scope", "user", user, "--reason", "suspended", "--api-key", admin, "--json")
    )
    # Then all three are stopped, the report reads back, and each response is cancelled
    assert (report["status"], report["matched"], report["cancelled"], report["failed"]) == ("completed", 3, 3, 0)
    assert report["scope"] == {"tenant": "dev", "end_user": user}
    assert document(turnstop(local_api, "status", report["id"], "--api-key", admin, "--json"))["cancelled"] == 3
    assert document(turnstop(local_api, "status", ids[0], "--json"))["state"] == "cancelled"


def test_an_unknown_key_is_exit_4_an_unknown_turn_3_and_nothing_listening_5(local_api: LocalApi) -> None:
    bad_key = turnstop(local_api, "status", "task_doesnotexist", "--api-key", "ts_not_a_key")
    assert bad_key.returncode == 4 and "401" in bad_key.stderr
    assert turnstop(local_api, "status", "task_doesnotexist").returncode == 3
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = turnstop(local_api, "status", "task_x", "--base-url", f"http://127.0.0.1:{port}")
    assert unreachable.returncode == 5 and "cannot reach" in unreachable.stderr
