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
    lines += upstream_lines(r["upstream"]) if "upstream" in r else []
    if "agents" in r:  # your own agent's turns (bench/agents.py)
        from bench.agents import lines as agent_lines

        lines += ["", "## Cancels of your own agent's turns", *agent_lines(r["agents"])]
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
        lines.append(
            f"| {label} | {v['seconds']} | {v['write_units']} | {v['read_units']} | {v['units_per_turn']} | "
            f"${v['usd']:.6f} |"
        )
    ratio = b["ratio"]
    lines += [
        "",
        f"Bulk over singles: {ratio['time']}× the time, {ratio['units']}× the request units "
        f"({b['bulk']['pages']} pages).",
    ]
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


UPSTREAM_PHASES = {
    "mid_stream": "mid-stream",
    "prefill": "silent prefill (no headers yet)",
    "first_token_wait": "silent before the first token",
}

UPSTREAM_HOW_TO_READ = """\
Turns run in-process as in a turn function: the runner comes from the composition root with a
`TURNSTOP_MODELS` document whose routes point at the loopback fake upstream (in the same
process), on the local store; a session turn's live reader drains it. The cancel is the cancel
API's write (`request_cancel`); its return is when the API answers 202. All times are
`time.monotonic()`, the fake's clock.

- *Closed*: from the cancel's acknowledgement to the fake upstream seeing the connection close
  (`disconnected_at`). It includes the keeper's wait for its next flag read (up to one cancel
  check, at the cadence shown), the read itself, the abort (`shutdown` of the socket) and the
  FIN reaching the server. Mid-stream cancels come 0.2–0.5 s after the first token; prefill
  cancels 1.0–1.2 s into a 10 s silence before the response headers.
- *Tokens after ack*: tokens the upstream produced after the acknowledgement (for the
  Responses API, tokens its background response generated; for the others, tokens written to
  the connection). At a fixed rate it is the rate times the time to close.
- *Cancel → cancelled event*: from the acknowledgement to the `…cancelled` event at the reader.
- *Upstream cancel* (Responses): from the acknowledgement to the provider's own
  `POST /responses/{id}/cancel` reaching the fake (billing stops server-side).
- *Stream / upstream*: a 1,000-token answer at 500 tokens/s; from the request reaching the
  upstream to the reader holding the terminal event, over the upstream's own time from the
  request to its last byte (median of the runs). *Token lag*: from the upstream writing a
  token to the reader receiving it (median of the runs' p50 and p99).

Percentiles are nearest-rank: below 100 samples the p99 is the largest sample.
"""


def upstream_lines(u: dict[str, Any]) -> list[str]:
    goals = u["goals"]
    lines = ["", f"## Cancels that reach the model server (cancel check every {u['cancel_check_ms']} ms)", ""]
    lines += [
        "| provider | phase | n | closed p50 / p99 / max ms | tokens after ack p50 / p99 / max | "
        "cancel → cancelled event p50 / p99 ms | p99 ≤ " + f"{goals['close_p99_ms']:g} ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for provider, row in u["providers"].items():
        for phase, label in UPSTREAM_PHASES.items():
            v = row.get(phase)
            if v is None:
                continue
            c, t, e = v["close_ms"], v["tokens_after_ack"], v["cancel_to_terminal_ms"]
            lines.append(
                f"| {provider} | {label} | {v['n']} | {c['p50']} / {c['p99']} / {c['max']} | "
                f"{t['p50']:g} / {t['p99']:g} / {t['max']:g} | {e['p50']} / {e['p99']} | "
                f"{'yes' if v['goal_met'] else 'no'} |"
            )
    for provider, row in u["providers"].items():
        for phase, label in UPSTREAM_PHASES.items():
            up = (row.get(phase) or {}).get("upstream_cancel_ms")
            if up:
                lines.append("")
                lines.append(
                    f"{provider}, {label}: its own cancel API reached the upstream {up['p50']} ms (p50), "
                    f"{up['p99']} ms (p99) after the acknowledgement ({up['n']} of the cancels)."
                )
    lines += ["", f"## Stream time / upstream time at {u['rate_tps']} tokens/s", ""]
    lines += [
        f"| provider | tokens | runs | upstream s | stream / upstream (median, max) | token lag p50 / p99 ms | "
        f"≤ {goals['stream_ratio']}× |",
        "|---|---|---|---|---|---|---|",
    ]
    for provider, row in u["providers"].items():
        s = row["stream"]
        lines.append(
            f"| {provider} | {s['tokens']} | {s['runs']} | {s['upstream_s_median']} | {s['ratio_median']}×, "
            f"{s['ratio_max']}× | {s['token_lag_ms']['p50']} / {s['token_lag_ms']['p99']} | "
            f"{'yes' if s['goal_met'] else 'no'} |"
        )
    load = u.get("load_average")
    lines += ["", f"{u['seconds']} s" + (f"; load average {load[0]} before, {load[1]} after." if load else ".")]
    misses = upstream_misses(u)
    if misses:
        lines += ["", "### Goals missed", "", *misses]
    lines += ["", UPSTREAM_HOW_TO_READ]
    return lines


# Why a phase can miss its goal by design (the rest would be this machine's load).
UPSTREAM_WHY = {
    ("openai-responses", "prefill"): (
        "Before the response headers the Responses provider does not know the response's id, so "
        "its abort keeps the connection open up to `ID_GRACE_S` (1 s) for `response.created` to "
        "name it: without the id it cannot send `POST /responses/{id}/cancel`, and a background "
        "response goes on generating, and billing, after its stream is gone. The connection is "
        "shut when the grace runs out. The turn itself ends at once (the cancelled event reaches "
        "the reader as fast as in the other phases). OpenAI answers `response.created` as soon as "
        "a background response is queued, so with it a long prefill is silence after the headers: "
        'the "silent before the first token" row, which meets the goal.'
    ),
}


def upstream_misses(u: dict[str, Any]) -> list[str]:
    """One line per missed goal: by how much, and why where the reason is the design."""
    goals, out = u["goals"], []
    for provider, row in u["providers"].items():
        for phase, label in UPSTREAM_PHASES.items():
            v = row.get(phase)
            if v is None or v["goal_met"]:
                continue
            p99 = v["close_ms"]["p99"]
            why = UPSTREAM_WHY.get((provider, phase), "")
            out.append(
                f"- {provider}, {label}: closed p99 {p99} ms, {p99 - goals['close_p99_ms']:.0f} ms over "
                f"the {goals['close_p99_ms']:g} ms goal. {why}".rstrip()
            )
        s = row["stream"]
        if not s["goal_met"]:
            out.append(
                f"- {provider}: stream / upstream {s['ratio_median']}×, {s['ratio_median'] - goals['stream_ratio']:.3f}× "
                f"over the {goals['stream_ratio']}× goal."
            )
    return out
