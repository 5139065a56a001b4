"""LLM dialect on DynamoDB Local: the shared cases, plus cancels racing a real worker thread."""

from __future__ import annotations

import threading

from tests.cases.fixtures import Env
from tests.cases.llm_cases import *  # noqa: F403
from tests.cases.llm_cases import Llm, assert_sdk_response
from turnstop.runtime.model import ScriptedModel
from turnstop.runtime.runner import TurnRunner


def test_given_cancels_racing_a_running_worker_then_answer_and_final_object_agree(env: Env) -> None:
    llm = Llm(env)
    for words in (1, 3, 8, 20):
        rid = llm.start_bg(f"Write a {words}-word note")
        runner = TurnRunner(
            llm.store, lambda t: ScriptedModel(1), renderers=RENDERERS, lease_ms=30_000, owner="race-worker"
        )
        result: list[str] = []
        worker = threading.Thread(target=lambda r=runner, out=result, i=rid: out.append(r.handle(i)))
        worker.start()
        answers = [llm.cancel(rid) for _ in range(3)]
        worker.join(timeout=60)
        final = llm.retrieve(rid).json
        assert_sdk_response(final)
        assert all(a.status == 200 for a in answers)
        # whoever won, the final object is what the last cancel answered, and a cancel that
        # was accepted always ends cancelled with exactly the output it reported
        assert answers[-1].json == final
        if answers[0].json["status"] == "cancelled":
            assert final["status"] == "cancelled"
            assert final["output_text"] == answers[0].json["output_text"]
            assert [e["kind"] for e in llm.store.ledger.entries("dev", rid)] == ["usage"]
        else:
            assert final["status"] == "completed" and result == ["completed"]
