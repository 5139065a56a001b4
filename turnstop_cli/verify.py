"""``make verify``: a short smoke test of any running turnstop, local or deployed.

One turn started and stopped in each dialect that a key alone can reach (sessions streamed,
LLM streamed, omni polled, tasks polled; chat needs a browser sign-in and is left out), each
cancel followed until the turn reports its cancelled state; then, when a cancel queue is named
(``--cancel-queue-url``, a stack's ``CancelQueueUrl`` output), one turn stopped through the
queue. One line per check, ``ok`` or ``FAIL`` with what was seen; exit 1 when any failed.

    python -m turnstop_cli.verify --base-url URL --api-key KEY [--cancel-queue-url URL --tenant T]
    python -m turnstop_cli.verify        # the running `make run`: its local.json names all of it
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

LONG = "Write a 5000-word essay on the history of cryptography"
DEADLINE_S = 60.0


class CheckFailed(Exception):
    """One check saw something other than what a working turnstop answers."""


def expect(response: httpx.Response, *statuses: int) -> Any:
    if response.status_code not in statuses:
        raise CheckFailed(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:200]}"
        )
    return response.json() if response.content else None


def until(check: Callable[[], Any], what: str) -> Any:
    """Poll ``check`` until it returns something truthy, for at most DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise CheckFailed(f"timed out waiting for {what}")


def sse_names(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        if line.startswith("event:"):
            yield line.partition(":")[2].strip()


def streamed_cancel(
    client: httpx.Client,
    start: tuple[str, str, dict[str, Any]],
    id_of: Callable[[httpx.Response, str], str],
    cancel: Callable[[str], httpx.Response],
    last_event: str,
) -> str:
    """Open a stream, cancel the turn from another request once its id is known, and check the
    stream ends with ``last_event``."""
    method, path, body = start
    seen: dict[str, Any] = {}
    started = threading.Event()

    def read() -> None:
        try:
            with client.stream(method, path, json=body) as r:
                if r.status_code != 200:
                    seen["error"] = f"{method} {path}: {r.status_code} {r.read()[:200]!r}"
                    return
                lines = r.iter_lines()
                first = ""
                for line in lines:
                    if line.startswith("data:"):
                        first = line.partition(":")[2]
                        break
                seen["id"] = id_of(r, first)
                started.set()
                seen["events"] = list(sse_names(lines))
        except Exception as error:  # reported below
            seen["error"] = repr(error)
        finally:
            started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not started.wait(DEADLINE_S) or "id" not in seen:
        raise CheckFailed(seen.get("error", "the stream never started"))
    expect(cancel(seen["id"]), 200, 202)
    reader.join(DEADLINE_S)
    if reader.is_alive():
        raise CheckFailed("the stream did not end after the cancel")
    events = seen.get("events") or []
    if last_event not in events[-3:]:
        raise CheckFailed(f"the stream ended with {events[-3:]}, not {last_event}")
    return str(seen["id"])


def check_sessions(client: httpx.Client) -> str:
    rid = streamed_cancel(
        client,
        ("POST", "/v1/responses", {"input": LONG}),
        lambda r, _: r.headers["X-Response-Id"],
        lambda rid: client.post(f"/v1/responses/{rid}/cancel"),
        "response.cancelled",
    )
    return f"sessions: streamed {rid}, cancelled mid-stream"


def check_llm(client: httpx.Client) -> str:
    rid = streamed_cancel(
        client,
        (
            "POST",
            "/api/v1/llm/responses",
            {"model": "turnstop:scripted", "input": LONG, "stream": True, "background": True},
        ),
        lambda _, data: str(json.loads(data)["response"]["id"]),
        lambda rid: client.post(f"/api/v1/llm/responses/{rid}/cancel"),
        "response.cancelled",
    )
    status = expect(client.get(f"/api/v1/llm/responses/{rid}"), 200)["status"]
    if status != "cancelled":
        raise CheckFailed(f"{rid} is {status}, not cancelled")
    return f"llm: streamed {rid}, cancelled mid-stream"


def check_omni(client: httpx.Client) -> str:
    started = expect(client.post("/v1/omni-ai/threads", json={"type": "instant", "account_id": 1, "text": LONG}), 201)
    rid = started["data"]["response_id"]
    expect(client.delete(f"/v1/omni-ai/responses/{rid}", params={"account_id": 1}), 200, 202)
    until(
        lambda: (
            expect(client.get(f"/v1/omni-ai/responses/{rid}", params={"account_id": 1}), 200)["data"]["status"]
            in ("canceled", "cancelled")
        ),
        f"omni response {rid} to end cancelled",
    )
    return f"omni: started {rid}, cancelled"


def check_tasks(client: httpx.Client) -> str:
    body = {"capability": "text.generate", "model": "auto", "input": {"prompt": LONG}}
    tid = expect(client.post("/v1/tasks", json=body), 200, 201, 202)["task_id"]
    expect(client.post(f"/v1/tasks/{tid}/cancel", json={"reason": "make verify"}), 200, 202)
    until(
        lambda: expect(client.get(f"/v1/tasks/{tid}"), 200)["status"] in ("cancelled", "canceled"),
        f"task {tid} to end cancelled",
    )
    return f"tasks: started {tid}, cancelled"


def check_queue(client: httpx.Client, queue_url: str, tenant: str) -> str:
    import boto3

    tid = expect(
        client.post("/v1/tasks", json={"capability": "text.generate", "model": "auto", "input": {"prompt": LONG}}),
        200,
        201,
        202,
    )["task_id"]
    message = {"turn_id": tid, "tenant": tenant, "reason": "make verify"}
    boto3.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))
    until(
        lambda: expect(client.get(f"/v1/tasks/{tid}"), 200)["status"] in ("cancelled", "canceled"),
        f"task {tid} to end cancelled through the queue",
    )
    return f"queue: task {tid} cancelled through the cancel queue"


def running_local() -> tuple[str, str, str, str] | None:
    """The running local instance's URL, dev key, cancel queue and the dev key's tenant, with
    this process's AWS clients pointed at its SQS (from its ``local.json``)."""
    from pathlib import Path

    from turnstop_local.keys import DEV_TENANT
    from turnstop_local.runtime import attach_to_running

    attached = attach_to_running(Path(__file__).resolve().parent.parent)
    if attached is None:
        return None
    state, resources = attached
    if not state.get("url") or not state.get("dev_api_key"):
        return None
    queue = resources.queues.get("CancelQueue")
    return str(state["url"]), str(state["dev_api_key"]), queue.url if queue else "", DEV_TENANT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make verify", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base-url", default="", help="the API (a stack's BaseUrl output); default: the running make run"
    )
    parser.add_argument("--api-key", default="", help="a Bearer key of the API")
    parser.add_argument("--cancel-queue-url", default="", help="the stack's CancelQueueUrl (optional)")
    parser.add_argument("--tenant", default="", help="the key's tenant, for the queue check")
    args = parser.parse_args(argv)
    if not args.base_url:
        local = running_local()
        if local is None:
            parser.error("no --base-url, and no running local instance (make run) was found")
        args.base_url, args.api_key, args.cancel_queue_url, args.tenant = local
    if not args.api_key:
        parser.error("--api-key is required with --base-url")
    checks: list[tuple[str, Callable[[httpx.Client], str]]] = [
        ("sessions", check_sessions),
        ("llm", check_llm),
        ("omni", check_omni),
        ("tasks", check_tasks),
    ]
    if args.cancel_queue_url:
        if not args.tenant:
            parser.error("--cancel-queue-url needs --tenant (the key's tenant)")
        checks.append(("queue", lambda c: check_queue(c, args.cancel_queue_url, args.tenant)))
    failed = 0
    headers = {"Authorization": f"Bearer {args.api_key}"}
    with httpx.Client(base_url=args.base_url.rstrip("/"), headers=headers, timeout=DEADLINE_S) as client:
        print(f"verifying {args.base_url}")
        for name, check in checks:
            try:
                print(f"  ok    {check(client)}", flush=True)
            except Exception as error:  # noqa: BLE001 - every failure is reported, the rest still run
                failed += 1
                print(f"  FAIL  {name}: {error}", flush=True)
    print(f"{len(checks) - failed}/{len(checks)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
