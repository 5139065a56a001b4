"""Tasks on DynamoDB Local: the shared cases, plus what needs real conditional-write atomicity
under concurrency (threads racing a worker, ten creates with one key) and AWS's rules for
index writes (ReturnConsumedCapacity=INDEXES)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from tests.cases.fixtures import Env
from tests.cases.store_cases import HookModel, eventually
from tests.cases.task_callbacks_cases import Receiver, deliverer, finished
from tests.cases.tasks_cases import *  # noqa: F403
from tests.cases.tasks_cases import TENANT, Reply, TasksApi
from tests.conftest import CapacityMeter
from turnstop.core.events import Event
from turnstop.dialects.registry import all_renderers
from turnstop.runtime.runner import TurnRunner


def test_cancels_racing_completion_charge_and_refund_exactly_once_and_agree_with_the_end(env: Env) -> None:
    """Four cancel threads released early in the run, as the last word is committed (racing the
    completion), or as the completion is written: whoever wins, one charge and one refund, and
    a cancel answered 202 always ends cancelled."""
    tasks = TasksApi(env)
    outcomes = set()
    for release in ("early", "last_word", "finish", "last_word", "finish"):
        tid = tasks.new("Write a 12-word note")
        go = threading.Event()
        answers: list[Reply] = []

        def canceller(task_id: str = tid, go: threading.Event = go, answers: list[Reply] = answers) -> None:
            go.wait()
            answers.append(tasks.cancel(task_id, "race"))

        threads = [threading.Thread(target=canceller) for _ in range(4)]
        for t in threads:
            t.start()

        def release_then_wait_for_an_answer(go: threading.Event = go, answers: list[Reply] = answers) -> None:
            go.set()  # early in the run: the model waits until a cancel has answered
            eventually(lambda: answers, "a cancel's answer")

        hooks: dict[int, Callable[[], object]] = {}
        if release == "early":
            hooks[2] = release_then_wait_for_an_answer
        elif release == "last_word":
            hooks[12] = go.set
        result = _runner(tasks, HookModel(12, hooks), go).handle(tid)
        for t in threads:
            t.join(timeout=60)
        final = tasks.get(tid).json
        ledger = tasks.ledger(tid)
        assert set(ledger) == {"charge", "refund"}, ledger
        charged, refunded = Decimal(ledger["charge"]["credits"]), Decimal(ledger["refund"]["credits"])
        if any(a.status == 202 for a in answers):  # a cancel won: it ends cancelled, refunded in full
            assert final["status"] == "cancelled" and result == "cancelled" and refunded == charged
        else:  # completion won: every cancel saw it finished and changed nothing
            assert final["status"] == "succeeded" and result == "completed"
            assert charged - refunded == Decimal(final["usage"]["credits"]) > 0
            assert {a.json["warnings"][0]["code"] for a in answers} == {"already_terminal"}
        assert sum(a.status == 202 and not a.json["warnings"] for a in answers) <= 1  # one cancel took effect
        assert Decimal(final["billing"]["refunded_credits"]) == refunded
        assert tasks.run(tid) == "already_final" and tasks.ledger(tid) == ledger
        outcomes.add(final["status"])
    assert outcomes == {"cancelled", "succeeded"}


def _runner(tasks: TasksApi, model: HookModel, finished: threading.Event) -> TurnRunner:
    """A worker running ``model``; it sets ``finished`` once it has written the end."""
    return TurnRunner(
        tasks.store, lambda t: model, renderers=all_renderers(), lease_ms=30_000, owner="w",
        on_finished=lambda turn, end: finished.set(),
    )  # fmt: skip


def test_ten_creates_with_one_key_at_once_make_one_task_and_one_charge(env: Env) -> None:
    tasks = TasksApi(env)
    body = {"capability": "text.generate", "model": "auto", "input": {"prompt": "Write a 9-word note"}}
    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(lambda _: tasks.create(body=body, headers={"Idempotency-Key": "burst"}), range(10)))
    assert {r.status for r in replies} == {202} and len({r.text for r in replies}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in replies) == 1
    tid = replies[0].json["task_id"]
    assert [t for t, _ in tasks.sqs.on("turns")] == [tid]
    charges = [e for e in tasks.store.ledger.entries(TENANT) if e["kind"] == "charge"]
    assert [e["turn_id"] for e in charges] == [tid]
    assert [t["task_id"] for t in tasks.list().json["data"]] == [tid]


def test_ten_cancels_with_one_key_at_once_get_one_answer(env: Env) -> None:
    tasks = TasksApi(env)
    tid = tasks.new()
    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(lambda _: tasks.cancel(tid, "once", headers={"Idempotency-Key": "stop"}), range(10)))
    assert {(r.status, r.text) for r in replies} == {(200, replies[0].text)}
    assert replies[0].json["status"] == "cancelled"
    assert sum("idempotent-replayed" not in r.headers for r in replies) == 1


def test_concurrent_deliveries_of_one_callback_post_once(env: Env) -> None:
    tasks = TasksApi(env)
    tid = finished(tasks)
    receiver = Receiver(200)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda i: deliverer(tasks, receiver, owner=f"cb-{i}").deliver(tid), range(6)))
    assert results.count("delivered") == 1 and len(receiver.posts) == 1
    assert set(results) <= {"delivered", "taken", "not_due", "already_delivered"}


def test_a_task_step_commit_writes_no_index_copy(env: Env) -> None:
    """Task heads are in gsi3 (the list), gsi2 (in flight) and gsi4 (the live index of bulk
    cancels) from their creation; a step's commit changes no index's projection, so only
    creation, claim, cancel and finish write index copies (gsi4: creation, and the cancel that
    takes it out; its finish then has nothing left there)."""
    tasks = TasksApi(env)
    meter = CapacityMeter(env.client)
    try:
        tid = tasks.new("Write a 5-word note")
        created = meter.index_writes()
        meter.reset()
        head = tasks.store.turns.claim(tid, "worker-a", 30_000)
        claimed = meter.index_writes()
        meter.reset()
        for i in range(5):
            seq = tasks.store.turns.publish(tid, "worker-a", [Event(head.seq + 1, "task.output.delta", {"delta": f"w{i} "})],
                                            head.seq, head.usage.__class__(head.usage.input_tokens, i + 1), 30_000)  # fmt: skip
            head = head.replace(seq=seq)
        commits = list(meter.calls)
        meter.reset()
        cancelled = tasks.cancel(tid, "enough")
        cancel_units = meter.index_writes()
        meter.reset()
        env.clock.advance(seconds=31)  # the worker is gone: the redelivered message finishes it
        assert tasks.run(tid, owner="worker-b") == "cancelled"
        finished_units = meter.index_writes()
    finally:
        meter.close()
    assert cancelled.status == 202
    assert set(created) == {"gsi2", "gsi3", "gsi4"} and set(claimed) == {"gsi2", "gsi3"}
    assert [op for op, _ in commits] == ["PutItem", "UpdateItem"] * 5
    assert all(set(units) == {"table"} for _, units in commits), commits
    assert set(cancel_units) == {"gsi3", "gsi4"}  # the list shows it cancelled-to-be; no longer stoppable
    assert set(finished_units) == {"gsi2", "gsi3"}
