"""Cancel racing completion through the whole stack: whatever the timing, the cancel's
answer and the turn's last event agree, and each turn ends exactly once."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.e2e.conftest import LocalApi, sse_events

TURNS = 16
TERMINAL = {"response.completed", "response.cancelled", "response.failed"}


def race_one(api: LocalApi, delay_s: float) -> dict[str, Any]:
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.key}"}, timeout=60) as c:
        with c.stream("POST", "/v1/responses", json={"input": "Write a 4-word note"}) as r:
            rid = r.headers["X-Response-Id"]
            answer: dict[str, Any] = {}

            def fire() -> None:
                resp = c.post(f"/v1/responses/{rid}/cancel")
                answer.update(status=resp.status_code, body=resp.json())

            timer = threading.Timer(delay_s, fire)
            timer.start()
            events = list(sse_events(r.iter_lines()))
            timer.join()
        again = c.post(f"/v1/responses/{rid}/cancel")
        ledger = c.get("/v1/ledger", params={"response_id": rid}).json()["data"]
    return {"rid": rid, "answer": answer, "events": events, "again": again.json(), "ledger": ledger}


def test_cancel_racing_completion_always_agrees_with_the_final_event(local_api: LocalApi) -> None:
    rng = random.Random(7)  # spread the cancels from before the first word to after the last
    delays = [rng.uniform(0, 0.15) for _ in range(TURNS)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda d: race_one(local_api, d), delays))
    for res in results:
        kinds = [e["event"] for e in res["events"]]
        assert sum(k in TERMINAL for k in kinds) == 1 and kinds[-1] in TERMINAL, res["rid"]
        final = kinds[-1]
        if res["answer"]["status"] == 202:
            assert final == "response.cancelled", res
            assert res["ledger"] == []  # the seed: no usage record and no debit for a cancelled stream
        else:
            assert res["answer"]["status"] == 200 and final == "response.completed", res
            assert sorted(e["kind"] for e in res["ledger"]) == ["debit", "usage"]
        assert res["again"]["status"] == "already_complete"
