"""Run the benchmarks and write bench/results/latest.json and latest.md.

Measured on the local store (DynamoDB Local when Java 17+ is present, else moto's server),
in-process, so the numbers compare designs on the same machine; they are not AWS latencies.
Request units come from ReturnConsumedCapacity, which DynamoDB Local reports by AWS's rules.

    make bench                      # or: .venv/bin/python -m bench [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "turnstop"), str(ROOT)]

from bench import agents, bulk, coldinit, report, streaming, upstream  # noqa: E402
from bench.tables import on_a_local_table  # noqa: E402
from tests.conftest import CapacityMeter  # noqa: E402

DESIGNS = ["naive", "per_step", "default"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer cancel trials and cold-init runs (a smoke run)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest.json"))
    args = ap.parse_args()
    started = time.monotonic()
    with on_a_local_table("bench") as local:
        store = local.store
        meter = CapacityMeter(local.ddb)
        results: dict[str, Any] = {
            "store": local.kind,
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {_cpus()} CPUs",
            "streams": streaming.streams(store, meter, DESIGNS),
            "cancel_to_terminal": streaming.cancels(store, DESIGNS, trials=8 if args.quick else 30),
            "bulk_cancel": bulk.measure(
                store,
                meter,
                target=100 if args.quick else bulk.TARGET,
                in_flight=1000 if args.quick else bulk.IN_FLIGHT,
            ),
            "upstream": upstream.measure(store, quick=args.quick),
            "agents": agents.measure(store, quick=args.quick),
        }
        meter.close()
    results["cold_init"] = coldinit.measure(runs=3 if args.quick else 9)
    results["seconds"] = round(time.monotonic() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(report.markdown(results))
    print(out.with_suffix(".md").read_text())


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
