"""Load test of the local runtime: N simultaneous streaming turns, half of them cancelled.

    make load                                   # or: .venv/bin/python -m bench.load [--streams 50]
    .venv/bin/python -m bench.load --url http://127.0.0.1:3000 --key ts_dev_...   # a running instance

Without ``--url`` it starts the local runtime the way ``make run`` does (``python -m
turnstop_local serve``, on a free port, with its own state directory and dev key) and stops it
afterwards. Then, on the sessions dialect:

1. creates N sessions;
2. N threads connect at the same moment (a barrier) and each starts a streaming turn
   (``POST /v1/sessions/{id}/messages``, SSE; ``X-Response-Id`` names the turn);
3. every other stream, once it has received ``--cancel-after`` tokens, is cancelled
   (``POST /v1/sessions/{id}/responses/{rid}/cancel``, 202) and must end with
   ``message.cancelled``; the others must end with ``message.completed``;
4. reports errors (any non-2xx, connection resets, a stream that ends without its terminal
   event), hangs (a stream not over within ``--hang-after`` seconds) and the latency from
   sending the cancel to receiving ``message.cancelled`` (p50/p99), to
   ``bench/results/load.json`` and ``load.md``.

Bounded: at most 500 streams, every socket has a timeout, the whole run has a deadline, and
only loopback addresses are accepted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPException, HTTPResponse
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.e2e.conftest import pump_lines

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MAX_STREAMS = 500
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Longest wait for one read: a live stream sends a keep-alive every 15 s at the latest.
READ_TIMEOUT_SECONDS = 60.0


@dataclass
class StreamResult:
    index: int
    cancel: bool
    status: int | None = None
    response_id: str = ""
    tokens: int = 0
    terminal: str = ""  # the last event type: message.completed / message.cancelled / ...
    error: str = ""
    hung: bool = False
    first_token_ms: float | None = None
    cancel_status: int | None = None
    cancel_request_ms: float | None = None
    cancel_to_terminal_ms: float | None = None
    duration_ms: float = 0.0


# ------------------------------------------------------------------------------ the server


class LocalServer:
    """``python -m turnstop_local serve`` on a free port, as ``make run`` starts it."""

    def __init__(self, store: str | None, startup_timeout: float) -> None:
        self.key = f"ts_load_{secrets.token_hex(12)}"
        self.state_dir = Path(tempfile.mkdtemp(prefix="turnstop-load-"))
        self.log_path = self.state_dir / "server.log"
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "TURNSTOP_DEV_API_KEY": self.key,
            "TURNSTOP_STATE_DIR": str(self.state_dir),  # leave a developer's own instance alone
        }
        command = [sys.executable, "-m", "turnstop_local", "serve", "--port", "0"]
        if store:
            command += ["--store", store]
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True)
        self.url = self._wait_ready(startup_timeout)

    def _wait_ready(self, timeout: float) -> str:
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        threading.Thread(target=pump_lines, args=(stdout, lines), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if "ready on " in line:
                return line.rsplit("ready on ", 1)[1].strip()
        self.stop()
        raise SystemExit("the local runtime did not start:\n" + self.log_path.read_text()[-4000:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


# ------------------------------------------------------------------------------ the client


class Api:
    def __init__(self, url: str, key: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK:
            raise SystemExit(f"--url must be a loopback http:// address, not {url!r}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.key = key
        self.timeout = timeout

    def connection(self) -> HTTPConnection:
        return HTTPConnection(self.host, self.port, timeout=self.timeout)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}

    def post_json(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        connection = self.connection()
        try:
            connection.request("POST", path, body=json.dumps(body), headers=self.headers())
            response = connection.getresponse()
            raw = response.read()
            try:
                return response.status, json.loads(raw) if raw else {}
            except ValueError:
                return response.status, {"raw": raw[:200].decode(errors="replace")}
        finally:
            connection.close()


def sse_events(response: HTTPResponse) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event type, data) of each SSE frame; comments (keep-alives) are skipped."""
    event, data = "", ""
    while True:
        line = response.readline()
        if not line:
            return
        text = line.decode("utf-8").rstrip("\r\n")
        if not text:
            if event:
                yield event, json.loads(data) if data else {}
            event, data = "", ""
        elif text.startswith("event:"):
            event = text[6:].strip()
        elif text.startswith("data:"):
            data += text[5:].strip()


def run_stream(
    api: Api, result: StreamResult, session_id: str, args: argparse.Namespace, barrier: threading.Barrier
) -> None:
    connection = api.connection()
    started = time.monotonic()
    cancel_sent: float | None = None
    try:
        barrier.wait(timeout=60)
        connection.connect()  # every stream connects at the same moment
        body = json.dumps({"message": args.prompt})
        connection.request("POST", f"/v1/sessions/{session_id}/messages", body=body, headers=api.headers())
        response = connection.getresponse()
        result.status = response.status
        if response.status >= 300:
            result.error = f"HTTP {response.status}: {response.read()[:200]!r}"
            return
        result.response_id = response.getheader("X-Response-Id") or ""
        for event, _ in sse_events(response):
            if time.monotonic() - started > args.hang_after:
                result.hung = True
                return
            if event.endswith(".delta"):
                result.tokens += 1
                if result.first_token_ms is None:
                    result.first_token_ms = (time.monotonic() - started) * 1000
                if result.cancel and cancel_sent is None and result.tokens >= args.cancel_after:
                    cancel_sent = cancel(api, result, session_id)
            if event in ("message.completed", "message.cancelled", "message.failed"):
                result.terminal = event
                if cancel_sent is not None and event == "message.cancelled":
                    result.cancel_to_terminal_ms = (time.monotonic() - cancel_sent) * 1000
                break
        if not result.terminal:
            result.error = f"stream ended without a terminal event after {result.tokens} tokens"
    except TimeoutError:
        result.hung = True
    except (OSError, HTTPException, ValueError) as error:  # resets, truncated bodies, bad frames
        result.error = f"{type(error).__name__}: {error}"
    finally:
        result.duration_ms = (time.monotonic() - started) * 1000
        connection.close()


def cancel(api: Api, result: StreamResult, session_id: str) -> float:
    sent = time.monotonic()
    status, _ = api.post_json(f"/v1/sessions/{session_id}/responses/{result.response_id}/cancel", {})
    result.cancel_request_ms = (time.monotonic() - sent) * 1000
    result.cancel_status = status
    if status >= 300:
        result.error = f"cancel answered HTTP {status}"
    return sent


def create_sessions(api: Api, count: int) -> tuple[list[str], list[str]]:
    ids: list[str | None] = [None] * count
    errors: list[str] = []

    def create(index: int) -> None:
        try:
            status, body = api.post_json("/v1/sessions", {"persistent": False})
            if status == 201 and body.get("id"):
                ids[index] = str(body["id"])
            else:
                errors.append(f"create session: HTTP {status} {body}")
        except OSError as error:
            errors.append(f"create session: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(api.timeout + 5)
    return [i for i in ids if i], errors


# ------------------------------------------------------------------------------ the report


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)


def summarize(
    results: list[StreamResult], setup_errors: list[str], args: argparse.Namespace, store: str, wall_s: float
) -> dict[str, Any]:
    cancels = [r.cancel_to_terminal_ms for r in results if r.cancel_to_terminal_ms is not None]
    cancel_requests = [r.cancel_request_ms for r in results if r.cancel_request_ms is not None]
    first_tokens = [r.first_token_ms for r in results if r.first_token_ms is not None]
    errors = setup_errors + [f"stream {r.index}: {r.error}" for r in results if r.error]
    wrong = [
        r
        for r in results
        if not r.error and not r.hung and r.terminal != ("message.cancelled" if r.cancel else "message.completed")
    ]
    errors += [
        f"stream {r.index}: ended with {r.terminal} (cancel={r.cancel}, cancel status {r.cancel_status})" for r in wrong
    ]
    return {
        "config": {
            "streams": args.streams,
            "opened": len(results),
            "cancelled": sum(1 for r in results if r.cancel),
            "cancel_after_tokens": args.cancel_after,
            "prompt": args.prompt,
            "hang_after_s": args.hang_after,
            "store": store,
            "attached": bool(args.url),
        },
        "machine": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "errors": len(errors),
        "hangs": sum(1 for r in results if r.hung),
        "error_details": errors[:50],
        "completed": sum(1 for r in results if r.terminal == "message.completed"),
        "cancelled": sum(1 for r in results if r.terminal == "message.cancelled"),
        "tokens": sum(r.tokens for r in results),
        "cancel_to_terminal_ms": {
            "n": len(cancels),
            "p50": percentile(cancels, 0.5),
            "p99": percentile(cancels, 0.99),
            "max": percentile(cancels, 1.0),
        },
        "cancel_request_ms": {
            "n": len(cancel_requests),
            "p50": percentile(cancel_requests, 0.5),
            "p99": percentile(cancel_requests, 0.99),
        },
        "first_token_ms": {
            "n": len(first_tokens),
            "p50": percentile(first_tokens, 0.5),
            "p99": percentile(first_tokens, 0.99),
        },
        "wall_s": round(wall_s, 1),
    }


def write_report(summary: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_suffix(".tmp")
    temporary.write_text(json.dumps(summary, indent=2) + "\n")
    temporary.replace(out)
    c, m = summary["config"], summary["machine"]
    ct, cr, ft = summary["cancel_to_terminal_ms"], summary["cancel_request_ms"], summary["first_token_ms"]
    lines = [
        "# Load: simultaneous streaming turns, half cancelled",
        "",
        f"`make load`: {c['opened']} of {c['streams']} sessions-dialect streams connected at the same moment, "
        f'{c["cancelled"]} cancelled after {c["cancel_after_tokens"]} tokens; prompt "{c["prompt"]}"; '
        f"store {c['store']}; Python {m['python']} on {m['cpus']} CPUs ({m['machine']}).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| errors (non-2xx, resets, streams without their terminal event) | {summary['errors']} |",
        f"| hangs (not over within {c['hang_after_s']} s) | {summary['hangs']} |",
        f"| completed / cancelled | {summary['completed']} / {summary['cancelled']} |",
        f"| cancel sent → `message.cancelled` received, p50 / p99 / max | {ct['p50']} / {ct['p99']} / {ct['max']} ms |",
        f"| cancel request (202), p50 / p99 | {cr['p50']} / {cr['p99']} ms |",
        f"| first token, p50 / p99 | {ft['p50']} / {ft['p99']} ms |",
        f"| tokens received | {summary['tokens']} |",
        f"| wall time | {summary['wall_s']} s |",
        "",
    ]
    if summary["error_details"]:
        lines += ["Errors:", "", *[f"- {e}" for e in summary["error_details"]], ""]
    out.with_suffix(".md").write_text("\n".join(lines))


# ------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=50, help="simultaneous streams (default 50, at most 500)")
    parser.add_argument("--cancel-after", type=int, default=5, help="tokens a cancelled stream receives first")
    parser.add_argument("--prompt", default="Write a 300-word note")
    parser.add_argument("--hang-after", type=float, default=180.0, help="a stream not over by then is a hang (s)")
    parser.add_argument("--url", help="attach to a running local instance (loopback only) instead of starting one")
    parser.add_argument("--key", help="its API key (with --url)")
    parser.add_argument("--store", choices=["dynamodb-local", "moto"], help="store of the instance started here")
    parser.add_argument("--out", default=str(RESULTS / "load.json"))
    args = parser.parse_args(argv)
    if not 1 <= args.streams <= MAX_STREAMS:
        parser.error(f"--streams must be within 1..{MAX_STREAMS}")
    if bool(args.url) != bool(args.key):
        parser.error("--url and --key go together")
    return args


def run(api: Api, args: argparse.Namespace) -> tuple[list[StreamResult], list[str]]:
    sessions, setup_errors = create_sessions(api, args.streams)
    results = [StreamResult(index=i, cancel=i % 2 == 0) for i in range(len(sessions))]
    barrier = threading.Barrier(len(sessions))
    threads = [
        threading.Thread(target=run_stream, args=(api, r, s, args, barrier), daemon=True)
        for r, s in zip(results, sessions, strict=True)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + args.hang_after + 60
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    for r, t in zip(results, threads, strict=True):
        if t.is_alive():
            r.hung = True  # the socket timeout did not fire: count it and leave the thread behind
    return results, setup_errors


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = None if args.url else LocalServer(args.store, startup_timeout=180)
    try:
        if server is None:
            url, key, store = args.url, args.key, args.store or "attached"
        else:
            url, key = server.url, server.key
            store = args.store or json.loads((server.state_dir / "local.json").read_text())["store"]
        api = Api(url, key, timeout=min(READ_TIMEOUT_SECONDS, args.hang_after))
        started = time.monotonic()
        results, setup_errors = run(api, args)
        summary = summarize(results, setup_errors, args, store, time.monotonic() - started)
    finally:
        if server is not None:
            server.stop()
    write_report(summary, Path(args.out))
    print(Path(args.out).with_suffix(".md").read_text())
    ok = summary["errors"] == 0 and summary["hangs"] == 0
    if server is not None:
        if ok:
            shutil.rmtree(server.state_dir, ignore_errors=True)
        else:
            print(f"the local runtime's log: {server.log_path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
