"""The omni dialect on DynamoDB Local, plus the cancel-versus-completion race with real
threads (DynamoDB Local serializes conditional writes as DynamoDB does)."""

import threading

from tests.cases.fixtures import Env
from tests.cases.omni_cases import *  # noqa: F401,F403
from tests.cases.omni_cases import HookModel, Omni


def test_cancels_racing_completion_end_in_one_outcome_and_every_answer_tells_who_won(env: Env) -> None:
    omni = Omni(env)
    outcomes = set()
    for _ in range(6):
        r = omni.create_thread("Write a 20-word note").data
        answers: list[bool] = []
        go = threading.Event()

        def canceller(rid: str = r["response_id"], go: threading.Event = go, answers: list[bool] = answers) -> None:
            go.wait()
            answers.append(omni.cancel(rid).data["canceled"])

        threads = [threading.Thread(target=canceller) for _ in range(4)]
        for t in threads:
            t.start()
        omni.run(HookModel(20, hooks={19: go.set}))
        for t in threads:
            t.join()
        final = omni.response(r["response_id"]).data
        assert final["status"] in ("succeeded", "canceled")
        won_by_cancel = final["status"] == "canceled"
        outcomes.add(final["status"])
        # every answer is the truth: true exactly when the response ended canceled
        assert answers == [won_by_cancel] * 4
        messages = [m for m in omni.history(r["thread_id"]).data if m["role"] == "ASSISTANT"]
        assert len(messages) == 1 and messages[0]["id"] == final["output_message_id"]
        assert messages[0]["outcome"] == ("canceled" if won_by_cancel else "completed")
        # and a later cancel still says the same
        assert omni.cancel(r["response_id"]).data == {"canceled": won_by_cancel}
    assert outcomes  # (which side wins varies run to run; each run is checked above)
