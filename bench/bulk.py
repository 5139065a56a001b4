"""The bulk-cancel benchmark: stop 1,000 in-flight turns of one tenant among 10,000, with one
bulk cancel (the live index, pages of 100, eight cancels at a time) and, for comparison, with
1,000 single cancels sent one by one. Time and request units for each, and their ratio.

Part of ``make bench``; on its own (``make bench-bulk``, or ``python -m bench.bulk``) it writes
bench/results/bulk.json and bulk.md.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "turnstop"), str(ROOT)]

from bench.streaming import cost_of  # noqa: E402
from bench.tables import on_a_local_table, run_alone_args, write_alone  # noqa: E402
from tests.conftest import CapacityMeter  # noqa: E402
from turnstop.cancels.bulk import BulkCancel, Page  # noqa: E402
from turnstop.core import scopes  # noqa: E402
from turnstop.core.bulk import BulkRequest, BulkScope  # noqa: E402
from turnstop.core.ids import new_id  # noqa: E402
from turnstop.core.records import NewTurn  # noqa: E402
from turnstop.core.turn import CancelOutcome, CancelRequest  # noqa: E402
from turnstop.dialects.sessions.renderer import STATELESS_KIND, created_event  # noqa: E402
from turnstop.platform.settings import Settings  # noqa: E402
from turnstop.store import Store  # noqa: E402
from turnstop.store.codec import dump  # noqa: E402
from turnstop.store.heads import new_head  # noqa: E402

TARGET = 1000
IN_FLIGHT = 10_000
BATCH_WRITE = 25


def _new(tenant: str) -> NewTurn:
    return NewTurn(new_id("resp_"), STATELESS_KIND, tenant, scopes.STATELESS, 120_000, {"prompt": "Write a note"})


def _start(store: Store, tenant: str, n: int) -> list[str]:
    """``n`` queued turns of a tenant, each written by the real start transaction."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda _: store.turns.start(_new(tenant), created_event).id, range(n)))


def _crowd(store: Store, n: int) -> None:
    """``n`` in-flight heads of 80 other tenants, written in batches (heads as a start writes
    them: in the in-flight and live indexes)."""
    now = store.now()
    heads = [new_head(_new(f"other-{i % 80}"), now, None, 0) for i in range(n)]
    requests = [heads[i : i + BATCH_WRITE] for i in range(0, n, BATCH_WRITE)]

    def write(chunk: list[dict[str, Any]]) -> None:
        items: Any = {store.table: [{"PutRequest": {"Item": dump(h)}} for h in chunk]}
        while items:
            items = store.db.ddb.batch_write_item(RequestItems=items).get("UnprocessedItems") or None

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, requests))


def _bulk_cancel(store: Store, tenant: str, bulk_id: str) -> int:
    """Stop a tenant's in-flight turns with one bulk cancel; how many pages it took."""
    bulk = BulkCancel(store, Settings(table=store.table), send=lambda message: None)
    _, first = bulk.open(bulk_id, BulkRequest(BulkScope(tenant), reason="bench"), "admin")
    page: Page | None = first
    pages = 0
    while page is not None:  # each page is one queue message in AWS; run back to back here
        page = bulk.run_page(page).following
        pages += 1
    return pages


def _single_cancels(store: Store, tenant: str, ids: list[str]) -> None:
    for turn_id in ids:
        outcome, _ = store.turns.request_cancel(turn_id, tenant=tenant, req=CancelRequest(reason="bench"))
        assert outcome is CancelOutcome.CANCELLED


def measure(store: Store, meter: CapacityMeter, *, target: int = TARGET, in_flight: int = IN_FLIGHT) -> dict[str, Any]:
    _start(store, "bulk-target", target)
    single_ids = _start(store, "single-target", target)
    _crowd(store, in_flight - 2 * target)
    # Both ways once on a small tenant first, unmeasured: the store's first requests of a
    # kind are slower (DynamoDB Local's JIT), and whichever ran first would pay for it.
    _bulk_cancel(store, "warm-up-bulk", "bench-warm-up")
    _single_cancels(store, "warm-up-single", _start(store, "warm-up-single", 100))
    _start(store, "warm-up-bulk", 100)
    _bulk_cancel(store, "warm-up-bulk", "bench-warm-up-2")

    meter.reset()
    began = time.perf_counter()
    pages = _bulk_cancel(store, "bulk-target", "bench-bulk")
    bulk_s = time.perf_counter() - began
    bulk_cost = cost_of(meter)
    report = store.bulk.get("bench-bulk")
    assert report is not None and report.counts["cancelled"] == target, report

    meter.reset()
    began = time.perf_counter()
    _single_cancels(store, "single-target", single_ids)
    single_s = time.perf_counter() - began
    single_cost = cost_of(meter)
    return {
        "in_flight": in_flight,
        "target": target,
        "bulk": {
            "seconds": round(bulk_s, 2),
            "pages": pages,
            **bulk_cost.json(),
            "units_per_turn": round((bulk_cost.write_units + bulk_cost.read_units) / target, 3),
        },
        "singles": {
            "seconds": round(single_s, 2),
            **single_cost.json(),
            "units_per_turn": round((single_cost.write_units + single_cost.read_units) / target, 3),
        },
        "ratio": {
            "time": round(bulk_s / single_s, 3),
            "units": round(
                (bulk_cost.write_units + bulk_cost.read_units) / (single_cost.write_units + single_cost.read_units), 3
            ),
        },
    }


def main(argv: list[str] | None = None) -> None:
    from bench import report

    args = run_alone_args(argv, __doc__, "bulk", "100 turns among 1,000 (a smoke run)")
    with on_a_local_table("bench-bulk") as local:
        meter = CapacityMeter(local.ddb)
        try:
            result = measure(
                local.store,
                meter,
                target=100 if args.quick else TARGET,
                in_flight=1000 if args.quick else IN_FLIGHT,
            )
        finally:
            meter.close()
    print(write_alone(args.out, local.kind, "bulk_cancel", result, "Bulk cancel", report.bulk_lines(result)))


if __name__ == "__main__":
    main()
