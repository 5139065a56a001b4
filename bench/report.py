"""The benchmark's results as a page a person reads (bench/results/latest.md)."""

from __future__ import annotations

from typing import Any

from bench.streaming import SMALL_MODEL_USD_PER_M_TOKENS, TOKENS

TARGET_USD = 0.05 * SMALL_MODEL_USD_PER_M_TOKENS * TOKENS / 1_000_000  # 5 % of a small model's price

HOW_TO_READ = """\
## How to read this

Three designs run the same 1,000-token turn of a scripted model with one live reader, on the
same store: **naive** (a GetItem of the cancel flag and a PutItem per token; readers poll),
**per_step** (turnstop's previous design: one TransactWriteItems per token; readers poll the
head) and **default** (the runtime as it ships: the reader gets tokens from memory, a keeper
publishes coalesced chunks every 2 s and reads the flag every 200 ms).

- *Cost*: request units the whole turn consumed (start to terminal event, reader included),
  from DynamoDB's own ReturnConsumedCapacity, and their on-demand price. The target is 5 % of
  what a small model charges for the same 1,000 tokens ($0.60 per 1M output tokens).
- *Wall / model*: the turn's wall time over the model's own time; 1.00 means the store never
  slowed the model.
- *Token lag*: from the model producing a token to the live reader receiving it.
- *Cancel → terminal*: from the cancel request's answer to the `…cancelled` event at the
  reader; "silent model" cancels 0.3 s into a 3 s silence (a long tool call).
- *Bulk cancel*: one tenant's in-flight turns stopped by one bulk cancel (found through the
  live index, a page of 100 per queue message, eight cancel writes at a time), against the
  same number stopped by single cancels sent one by one; units are the whole operation's
  (index reads, the cancel writes, the report's and pages' items). The other tenants' turns
  are never read.
- *Cold init*: CPU time to import a cancel function and create its DynamoDB client, over
  `import boto3; boto3.client("dynamodb")`, in fresh interpreters (median).

Numbers are from this machine and its local store, not from AWS: compare them with each other.
"""


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "# turnstop benchmark",
        "",
        f"store: {r['store']}, python {r['python']}, {r['machine']}, {r['seconds']} s",
        "",
    ]
    lines += ["## A 1,000-token turn with one live reader", ""]
    lines += [
        "| design | rate | prompt | write units | read units | USD | vs target | wall / model | token lag p50 / p99 (ms) |"
    ]
    lines += ["|---|---|---|---|---|---|---|---|---|"]
    for key, v in r["streams"].items():
        design, rate, prompt = key.split("/")
        c = v["cost"]
        lines.append(
            f"| {design} | {rate} | {prompt} | {c['write_units']} | {c['read_units']} | ${c['usd']:.6f} | "
            f"{c['usd'] / TARGET_USD:.2f}× | {v['wall_over_model']} | {v['token_lag_ms']['p50']} / {v['token_lag_ms']['p99']} |"
        )
    lines += [
        "",
        "## Cancel → terminal event at the reader",
        "",
        "| design | scenario | n | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
    ]
    for key, v in r["cancel_to_terminal"].items():
        design, scenario = key.split("/")
        lines.append(f"| {design} | {scenario} | {v['n']} | {v['p50_ms']} | {v['p99_ms']} | {v['max_ms']} |")
    lines += bulk_lines(r["bulk_cancel"]) if "bulk_cancel" in r else []
    ci = r["cold_init"]
    lines += ["", f'## Cold init (baseline `import boto3; boto3.client("dynamodb")`: {ci["baseline_ms"]} ms CPU)', ""]
    lines += ["| function | ms CPU | ratio | with SnapStart: after-restore hook, ms CPU |", "|---|---|---|---|"]
    lines += [
        f"| {name} | {v['ms']} | {v['ratio']}× | {v.get('restore_ms', '—')} |"
        for name, v in ci.items()
        if isinstance(v, dict)
    ]
    lines += [
        "",
        "With SnapStart the init (the ms CPU column) runs once, before the snapshot; a restored instance"
        " runs only the after-restore hook before its first cancel (docs/cost.md#cold-starts).",
    ]
    lines += ["", _ratios(r), "", HOW_TO_READ]
    return "\n".join(lines) + "\n"


def bulk_lines(b: dict[str, Any]) -> list[str]:
    lines = ["", f"## Bulk cancel: {b['target']:,} in-flight turns of one tenant among {b['in_flight']:,}", ""]
    lines += ["| how | seconds | write units | read units | units per turn | USD |", "|---|---|---|---|---|---|"]
    for label, key in (("one bulk cancel", "bulk"), (f"{b['target']:,} single cancels, one by one", "singles")):
        v = b[key]
        lines.append(f"| {label} | {v['seconds']} | {v['write_units']} | {v['read_units']} | {v['units_per_turn']} | "
                     f"${v['usd']:.6f} |")  # fmt: skip
    ratio = b["ratio"]
    lines += ["", f"Bulk over singles: {ratio['time']}× the time, {ratio['units']}× the request units "
                  f"({b['bulk']['pages']} pages)."]  # fmt: skip
    return lines


def _ratios(r: dict[str, Any]) -> str:
    s = r["streams"]
    parts = []
    for rate in ("50tps", "500tps"):
        d = s[f"default/{rate}/short_prompt"]["cost"]["usd"]
        for other in ("naive", "per_step"):
            o = s[f"{other}/{rate}/short_prompt"]["cost"]["usd"]
            parts.append(f"{other} costs {o / d:.0f}× the default at {rate}")
    return "Ratios (short prompt): " + "; ".join(parts) + "."
