"""The `turnstop` command line without a network: id routing, target discovery, resume of a
dropped stream, and the exit code of every kind of failure (httpx.MockTransport)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from turnstop_cli import app as cli
from turnstop_cli.client import Api
from turnstop_cli.errors import CliError, ExitCode
from turnstop_cli.output import Out
from turnstop_cli.routing import classify
from turnstop_cli.target import DEFAULT_URL, Target, discover

URL = "http://127.0.0.1:3999"
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Handler], list[httpx.Request]]]:
    """Route the command's HTTP to a handler; returns the list of requests it received."""

    def install(handler: Handler) -> list[httpx.Request]:
        seen: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return handler(request)

        def api_for(base_url: str | None, api_key: str | None, chat_session: str | None = None) -> Api:
            target = Target(base_url or URL, api_key or "ts_test", True, "option")
            return Api(target, chat_session=chat_session, transport=httpx.MockTransport(record))

        monkeypatch.setattr(cli, "api_for", api_for)
        return seen

    yield install


def run(*args: str) -> Any:
    return CliRunner().invoke(cli.app, list(args))


def sse(*events: tuple[int, str, dict[str, Any]]) -> bytes:
    return "".join(f"id: {i}\nevent: {name}\ndata: {json.dumps(data)}\n\n" for i, name, data in events).encode()


def stream(body: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


def never(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got {request.method} {request.url}")


# ------------------------------------------------------------------------------ routing


@pytest.mark.parametrize(
    ("typed", "dialect", "session"),
    [
        ("sess_abc/msg_def", "sessions", "sess_abc"),
        ("task_abc", "tasks", None),
        ("182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e", "omni", None),
        ("thread_abc", "chat", None),
        ("bulk_abc", "bulk", None),
        ("resp_abc", None, None),  # llm or a stateless sessions turn: the API decides
    ],
)
def test_an_id_names_its_dialect_by_its_shape(typed: str, dialect: str | None, session: str | None) -> None:
    ref = classify(typed)
    assert (ref.dialect, ref.session_id) == (dialect, session)


def test_a_session_turn_without_its_session_is_a_usage_error_naming_the_fix() -> None:
    with pytest.raises(CliError) as caught:
        classify("msg_abc")
    assert caught.value.code is ExitCode.USAGE and "--session" in (caught.value.hint or "")


def test_dialect_option_forces_the_dialect_and_rejects_unknown_ones() -> None:
    assert classify("resp_abc", dialect="llm").dialect == "llm"
    assert classify("msg_abc", session="sess_x").session_id == "sess_x"
    for bad in ({"dialect": "smtp"}, {"session": "nope"}):
        with pytest.raises(CliError) as caught:
            classify("resp_abc", **bad)  # type: ignore[arg-type]
        assert caught.value.code is ExitCode.USAGE
    with pytest.raises(CliError):
        classify("not an id!")


# ------------------------------------------------------------------------------- target


def write_state(directory: Path, url: str, key: str | None, mode: int = 0o600) -> Path:
    """A local.json as the local runtime writes it (its owner's only, 0600), unless ``mode`` says otherwise."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "local.json"
    path.write_text(json.dumps({"url": url, "dev_api_key": key}))
    path.chmod(mode)
    return path


def test_the_local_instance_is_found_with_its_dev_key(tmp_path: Path) -> None:
    write_state(tmp_path / "state", "http://127.0.0.1:4123", "ts_dev_x")
    target = discover(None, None, {"TURNSTOP_STATE_DIR": str(tmp_path / "state")})
    assert (target.base_url, target.api_key, target.local, target.source) == (
        "http://127.0.0.1:4123",
        "ts_dev_x",
        True,
        "local.json",
    )
    # a key given by the caller wins over the dev key
    assert discover(None, "ts_mine", {"TURNSTOP_STATE_DIR": str(tmp_path / "state")}).api_key == "ts_mine"


def test_the_state_file_is_found_above_the_working_directory(tmp_path: Path) -> None:
    write_state(tmp_path / ".turnstop", "http://127.0.0.1:4124", "ts_dev_y")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert discover(None, None, {}, cwd=tmp_path / "a" / "b").base_url == "http://127.0.0.1:4124"


def test_a_deployed_base_url_never_gets_the_local_dev_key(tmp_path: Path) -> None:
    write_state(tmp_path, "http://127.0.0.1:4123", "ts_dev_x")
    env = {"TURNSTOP_STATE_DIR": str(tmp_path)}
    deployed = discover("https://d111.cloudfront.net/", None, env)
    assert (deployed.base_url, deployed.api_key, deployed.local) == ("https://d111.cloudfront.net", None, False)
    assert discover("http://127.0.0.1:4123", None, env).api_key == "ts_dev_x"


def test_without_any_instance_the_default_port_is_used(tmp_path: Path) -> None:
    target = discover(None, None, {"TURNSTOP_STATE_DIR": str(tmp_path / "none")})
    assert (target.base_url, target.source) == (DEFAULT_URL, "default")
    assert "make run" in target.unreachable_hint


def test_a_base_url_that_is_not_http_is_a_usage_error() -> None:
    assert run("status", "task_x", "--base-url", "ftp://x").exit_code == ExitCode.USAGE


# --------------------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (401, {"error": {"type": "unauthorized", "message": "Missing or invalid API key"}}, ExitCode.AUTH),
        (403, {"error": "forbidden", "message": "no"}, ExitCode.AUTH),
        (404, {"error": {"code": 404, "message": "Task not found"}}, ExitCode.NOT_FOUND),
        (409, {"error": {"message": "conflict"}}, ExitCode.API_ERROR),
        (500, {"message": "Internal Server Error"}, ExitCode.API_ERROR),
    ],
)
def test_an_error_answer_becomes_its_exit_code_and_message(
    api: Any, status: int, body: dict[str, Any], code: ExitCode
) -> None:
    api(lambda request: httpx.Response(status, json=body))
    result = run("status", "task_abc")
    assert result.exit_code == code
    message = body["error"]["message"] if isinstance(body.get("error"), dict) else body["message"]
    assert message in result.output


def test_json_errors_are_machine_readable(api: Any) -> None:
    api(lambda request: httpx.Response(404, json={"error": {"message": "Task not found"}}))
    result = run("status", "task_abc", "--json")
    assert result.exit_code == ExitCode.NOT_FOUND
    error = json.loads(result.output.strip().splitlines()[-1])["error"]
    assert (error["kind"], error["http_status"], error["exit_code"]) == ("not_found", 404, 3)


def test_nothing_listening_is_unreachable(api: Any) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    api(refuse)
    result = run("cancel", "task_abc")
    assert result.exit_code == ExitCode.UNREACHABLE and "cannot reach" in result.output


def test_a_usage_error_sends_nothing(api: Any) -> None:
    seen = api(never)
    assert run("cancel", "msg_abc").exit_code == ExitCode.USAGE
    assert run("cancel", "--scope", "galaxy", "x").exit_code == ExitCode.USAGE
    assert run("cancel", "--scope", "account", "seven").exit_code == ExitCode.USAGE
    assert run("cancel", "task_abc", "--created-before", "2026-01-01T00:00:00Z").exit_code == ExitCode.USAGE
    assert seen == []


def test_a_reason_where_the_dialect_records_none_is_refused_before_the_cancel(api: Any) -> None:
    seen = api(lambda request: httpx.Response(200, json={"id": "resp_abc", "status": "in_progress"}))
    result = run("cancel", "resp_abc", "--dialect", "llm", "--reason", "why")
    assert result.exit_code == ExitCode.USAGE
    assert [r.url.path for r in seen if r.url.path.endswith("/cancel")] == []


# ------------------------------------------------------------------------------ routing over HTTP


def test_a_resp_id_unknown_to_llm_is_cancelled_as_a_stateless_sessions_turn(api: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v1/llm/"):
            return httpx.Response(404, json={"error": {"message": "not found"}})
        return httpx.Response(202, json={"response_id": "resp_abc", "status": "cancelling"})

    seen = api(handler)
    result = run("cancel", "resp_abc", "--reason", "ops", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["outcome"] == "cancelling"
    assert seen[-1].url.path == "/v1/responses/resp_abc/cancel"
    assert json.loads(seen[-1].content) == {"reason": "ops"}


def test_each_dialect_cancels_through_its_own_endpoint(api: Any) -> None:
    seen = api(lambda request: httpx.Response(200, json={"status": "cancelled", "data": {"canceled": True}}))
    uuid = "182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e"
    for args in (
        ["sess_s/msg_m"],
        ["task_t", "--reason", "r"],
        [uuid, "--account", "7"],
        ["resp_r", "--dialect", "llm"],
    ):
        assert run("cancel", *args).exit_code == 0
    assert [(r.method, r.url.path, r.url.query.decode()) for r in seen] == [
        ("POST", "/v1/sessions/sess_s/responses/msg_m/cancel", ""),
        ("POST", "/v1/tasks/task_t/cancel", ""),
        ("DELETE", f"/v1/omni-ai/responses/{uuid}", "account_id=7"),
        ("POST", "/api/v1/llm/responses/resp_r/cancel", ""),
    ]


def test_chat_without_a_signed_in_session_explains_how_to_get_one(api: Any) -> None:
    api(never)
    result = run("cancel", "thread_abc")
    assert result.exit_code == ExitCode.USAGE and "--chat-session" in result.output


# --------------------------------------------------------------------------------- resume


def test_a_dropped_sessions_stream_resumes_after_the_last_event_and_ends_cancelled(api: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "last-event-id" not in request.headers:  # the first connection drops after event 2
            return stream(sse((1, "message.created", {"status": "queued"}), (2, "message.delta", {"delta": "the "})))
        assert request.headers["last-event-id"] == "2"
        return stream(
            sse(
                (3, "message.delta", {"delta": "key "}),
                (4, "message.cancelled", {"status": "cancelled", "billed": False}),
            )
        )

    seen = api(handler)
    result = run("tail", "sess_s/msg_m", "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4]
    assert (lines[-1]["event"], lines[-1]["state"]) == ("message.cancelled", "cancelled")
    assert len(seen) == 2 and seen[0].url.path == "/v1/sessions/sess_s/responses/msg_m/events"


def test_an_llm_stream_resumes_with_starting_after(api: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        after = request.url.params["starting_after"]
        if after == "0":
            return stream(b'event: response.created\ndata: {"sequence_number": 1}\n\n')
        assert after == "1"
        return stream(
            b'event: response.completed\ndata: {"sequence_number": 2, "response": {"status": "completed"}}\n\n'
        )

    api(handler)
    result = run("tail", "resp_abc", "--dialect", "llm", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["state"] == "completed"


def test_a_stream_that_keeps_dropping_gives_up_as_unreachable(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("turnstop_cli.dialects.backoff", lambda failures: 0.0)
    api(lambda request: stream(sse((1, "message.created", {}))))
    result = run("tail", "sess_s/msg_m", "--max-reconnects", "2")
    assert result.exit_code == ExitCode.UNREACHABLE and "--after 1" in result.output


def test_a_polled_task_prints_its_new_output_and_ends_with_its_final_state(api: Any) -> None:
    pages = iter(
        [
            {"status": "running", "output": {"text": "the "}},
            {"status": "running", "output": {"text": "the key "}, "cancel_requested_at": "t"},
            {"status": "cancelled", "output": {"text": "the key "}, "error": {"code": "cancelled"}},
        ]
    )
    api(lambda request: httpx.Response(200, json=next(pages)))
    result = run("tail", "task_abc", "--interval", "0.05", "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert "".join(line["delta"] or "" for line in lines) == "the key "
    assert lines[-1]["state"] == "cancelled"


# ----------------------------------------------------------------------------- bulk cancel


def test_a_bulk_cancel_handed_to_the_queue_is_followed_to_its_report(api: Any) -> None:
    reports = iter(
        [
            httpx.Response(
                202, json={"id": "bulk_1", "status": "running", "matched": 25, "cancelled": 25, "failed": 0}
            ),
            httpx.Response(
                200, json={"id": "bulk_1", "status": "completed", "matched": 60, "cancelled": 60, "failed": 0}
            ),
        ]
    )
    seen = api(lambda request: next(reports))
    result = run("cancel", "--scope", "account", "7", "--reason", "suspended", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cancelled"] == 60
    assert json.loads(seen[0].content) == {"scope": {"account_id": 7}, "reason": "suspended"}
    assert (seen[1].method, seen[1].url.path) == ("GET", "/v1/admin/cancels/bulk_1")


def test_a_bulk_cancel_with_failures_exits_1(api: Any) -> None:
    api(lambda request: httpx.Response(200, json={"id": "bulk_1", "status": "completed", "matched": 2, "failed": 1}))
    assert run("cancel", "--scope", "user", "bob").exit_code == ExitCode.API_ERROR


def test_a_bulk_cancel_without_an_admin_key_says_how_to_get_one(api: Any) -> None:
    api(lambda request: httpx.Response(403, json={"error": {"message": "This endpoint needs an admin key"}}))
    result = run("cancel", "--scope", "tenant", "acme")
    assert result.exit_code == ExitCode.AUTH and "--admin" in result.output


# ------------------------------------------------------------------------------------ keys


def test_keys_are_not_created_over_http_against_a_deployed_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNSTOP_STATE_DIR", str(tmp_path))
    result = run("keys", "create", "--tenant", "acme", "--accounts", "1", "--base-url", "https://api.example.com")
    assert result.exit_code == ExitCode.USAGE and "--aws" in result.output


def test_a_bulk_id_reads_its_report_and_is_no_turn_to_tail_or_cancel(api: Any) -> None:
    seen = api(lambda request: httpx.Response(200, json={"id": "bulk_1", "status": "completed", "cancelled": 4}))
    assert run("tail", "bulk_1").exit_code == ExitCode.USAGE
    assert run("cancel", "bulk_1").exit_code == ExitCode.USAGE
    result = run("status", "bulk_1", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["cancelled"] == 4
    assert [r.url.path for r in seen] == ["/v1/admin/cancels/bulk_1"]


def test_tail_prints_the_text_on_stdout_and_the_end_on_stderr(api: Any) -> None:
    api(
        lambda request: stream(
            sse(
                (1, "message.created", {"status": "queued"}),
                (2, "message.delta", {"delta": "the "}),
                (3, "message.delta", {"delta": "key"}),
                (4, "message.cancelled", {"status": "cancelled", "billed": False, "usage": {"output_tokens": 2}}),
            )
        )
    )
    result = run("tail", "sess_s/msg_m")
    assert result.exit_code == 0
    assert result.stdout == "the key\n"
    assert "message.cancelled" in result.stderr and "billed: false" in result.stderr


def test_status_of_a_running_session_turn_is_read_from_its_replay(api: Any) -> None:
    def replay_then_quiet() -> Iterator[bytes]:
        yield sse((1, "message.created", {"status": "queued"}), (2, "message.delta", {"delta": "the "}))
        raise httpx.ReadTimeout("no event for a while")

    api(lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=replay_then_quiet()))
    result = run("status", "sess_s/msg_m", "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert (status["state"], status["events"], status["last_event"]) == ("running", 2, "message.delta")


def test_status_of_a_finished_session_turn_is_its_terminal_event(api: Any) -> None:
    api(
        lambda request: stream(
            sse((1, "message.created", {}), (2, "message.completed", {"status": "completed", "billed": True}))
        )
    )
    status = json.loads(run("status", "sess_s/msg_m", "--json").stdout)
    assert (status["state"], status["billed"]) == ("completed", True)


def test_events_a_reconnect_sends_again_are_not_printed_twice(api: Any) -> None:
    first = sse((1, "message.created", {}), (2, "message.delta", {"delta": "a "}))
    replies = iter([stream(first), stream(first + sse((3, "message.completed", {"status": "completed"})))])
    api(lambda request: next(replies))
    result = run("tail", "sess_s/msg_m", "--json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [1, 2, 3]


def test_an_answer_that_is_not_json_is_an_api_error_not_a_traceback(api: Any) -> None:
    api(lambda request: httpx.Response(200, text="<html>gateway</html>"))
    result = run("cancel", "task_abc")
    assert result.exit_code == ExitCode.API_ERROR and "without a JSON object" in result.output


# --------------------------------------------------------------------- a planted local.json


@pytest.mark.parametrize("mode", [0o644, 0o660, 0o606, 0o620])
def test_a_local_json_other_users_can_read_or_write_is_ignored(
    tmp_path: Path, mode: int, capsys: pytest.CaptureFixture[str]
) -> None:
    write_state(tmp_path / ".turnstop", "http://127.0.0.1:4124", "ts_dev_y", mode=mode)
    (tmp_path / "a").mkdir()
    target = discover(None, "ts_mine", {}, cwd=tmp_path / "a")
    assert target.source != "local.json" and target.base_url == DEFAULT_URL
    assert "ignoring" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["https://attacker.example", "http://attacker.example:3000", "https://127.0.0.1:3000"])
def test_a_local_json_naming_anything_but_a_loopback_http_url_is_ignored(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file planted in a parent directory (a shared /tmp, a cloned repository) must not send
    the caller's key to its URL."""
    write_state(tmp_path / ".turnstop", url, None)
    (tmp_path / "a").mkdir()
    target = discover(None, "ts_mine", {}, cwd=tmp_path / "a")
    assert (target.base_url, target.source) == (DEFAULT_URL, "default")
    assert "not a loopback http URL" in capsys.readouterr().err


def test_a_local_json_of_another_user_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_state(tmp_path / "state", "http://127.0.0.1:4123", "ts_dev_x")
    real = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real + 1)
    target = discover(None, None, {"TURNSTOP_STATE_DIR": str(tmp_path / "state")})
    assert (target.source, target.api_key) == ("default", None)


def test_a_corrupt_local_json_does_not_block_an_explicit_base_url(tmp_path: Path) -> None:
    for url in ("not a url", "ftp://x", "http://[::1"):
        write_state(tmp_path, url, "ts_dev_x")
        target = discover("https://api.example.com", "ts_mine", {"TURNSTOP_STATE_DIR": str(tmp_path)})
        assert (target.base_url, target.api_key) == ("https://api.example.com", "ts_mine")


def test_a_local_json_with_a_corrupt_url_is_skipped_not_a_crash(tmp_path: Path) -> None:
    write_state(tmp_path, "http://[::1", "ts_dev_x")
    assert discover(None, None, {"TURNSTOP_STATE_DIR": str(tmp_path)}).source == "default"


# ------------------------------------------------------------------------------- api keys


@pytest.mark.parametrize("key", ["ts_é", "ts key", "ts_key\n", "ts\tkey", ""])
def test_a_key_that_cannot_be_a_header_is_a_usage_error(key: str, tmp_path: Path) -> None:
    env = {"TURNSTOP_STATE_DIR": str(tmp_path)}
    result = CliRunner().invoke(
        cli.app, ["status", "task_abc", "--base-url", "http://127.0.0.1:9", "--api-key", key], env=env
    )
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "printable ASCII" in result.output


def test_a_dev_key_that_cannot_be_a_header_is_a_usage_error(tmp_path: Path) -> None:
    write_state(tmp_path, "http://127.0.0.1:4123", "ts_dev\nx")
    with pytest.raises(CliError) as caught:
        discover(None, None, {"TURNSTOP_STATE_DIR": str(tmp_path)})
    assert caught.value.code is ExitCode.USAGE


# ----------------------------------------------------------------------- rich markup injection

MARKUP = "[/oops] [bold]x[/bold] [/]"


def test_api_strings_that_look_like_markup_are_printed_as_they_are(api: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/ledger":
            return httpx.Response(
                200, json={"data": [{"at": MARKUP, "turn_id": MARKUP, "kind": MARKUP, "billed": MARKUP, "x": MARKUP}]}
            )
        if request.url.path.startswith("/v1/admin/cancels"):
            return httpx.Response(200, json={"id": MARKUP, "status": "completed", "reason": MARKUP, "failed": 0})
        return httpx.Response(200, json={"status": MARKUP})

    api(handler)
    for args in (["ledger"], ["cancel", "--scope", "user", MARKUP, "--reason", MARKUP], ["cancel", "task_abc"]):
        result = run(*args)
        assert result.exit_code == 0, (args, result.output, result.exception)
        assert MARKUP in result.output


def test_the_spinner_prints_markup_like_descriptions_as_text() -> None:
    out = Out(json_mode=False)
    out.err = Console(file=io.StringIO(), force_terminal=True, width=120)
    with out.busy() as progress:
        progress.add_task(f"stopping the in-flight turns of user {MARKUP}", total=None)
        progress.refresh()
    assert "[/oops]" in out.err.file.getvalue()  # type: ignore[attr-defined]


# ------------------------------------------------------------------------ tail retries 5xx / 429


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_a_stream_answering_5xx_or_429_on_reconnect_is_retried(
    api: Any, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    monkeypatch.setattr("turnstop_cli.dialects.backoff", lambda failures: 0.0)
    replies = iter(
        [
            stream(sse((1, "message.created", {}))),
            httpx.Response(status, json={"message": "Service Unavailable"}),
            httpx.Response(status, json={"message": "Service Unavailable"}),
            stream(sse((2, "message.completed", {"status": "completed"}))),
        ]
    )
    seen = api(lambda request: next(replies))
    result = run("tail", "sess_s/msg_m", "--json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [1, 2]
    assert seen[-1].headers["last-event-id"] == "1"


def test_a_stream_answering_5xx_past_the_budget_gives_up_with_the_resume_hint(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("turnstop_cli.dialects.backoff", lambda failures: 0.0)
    seen = api(lambda request: httpx.Response(503, json={"message": "Service Unavailable"}))
    result = run("tail", "sess_s/msg_m", "--max-reconnects", "2")
    assert result.exit_code == ExitCode.API_ERROR and "--after 0" in result.output
    assert len(seen) == 3


def test_a_stream_answering_4xx_is_not_retried(api: Any) -> None:
    seen = api(lambda request: httpx.Response(404, json={"error": {"message": "not found"}}))
    assert run("tail", "sess_s/msg_m").exit_code == ExitCode.NOT_FOUND
    assert len(seen) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_a_poll_answering_5xx_or_429_is_retried(api: Any, monkeypatch: pytest.MonkeyPatch, status: int) -> None:
    monkeypatch.setattr("turnstop_cli.dialects.backoff", lambda failures: 0.0)
    replies = iter(
        [
            httpx.Response(200, json={"status": "running", "output": {"text": "a"}}),
            httpx.Response(status, json={"error": {"message": "slow down"}}),
            httpx.Response(200, json={"status": "succeeded", "output": {"text": "ab"}}),
        ]
    )
    api(lambda request: next(replies))
    result = run("tail", "task_abc", "--interval", "0.05", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["state"] == "completed"
    assert "retrying" in result.stderr


def test_a_poll_answering_5xx_past_the_budget_gives_up(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("turnstop_cli.dialects.backoff", lambda failures: 0.0)
    seen = api(lambda request: httpx.Response(500, json={"message": "Internal Server Error"}))
    assert run("tail", "task_abc", "--max-reconnects", "1").exit_code == ExitCode.API_ERROR
    assert len(seen) == 2


# ---------------------------------------------------------------------------- not an event stream


def test_a_200_that_is_not_an_event_stream_is_an_api_error_naming_its_content_type(api: Any) -> None:
    api(lambda request: httpx.Response(200, html="<html>sign in</html>"))
    for args in (["tail", "sess_s/msg_m"], ["status", "sess_s/msg_m"]):
        result = run(*args)
        assert result.exit_code == ExitCode.API_ERROR, result.output
        assert "text/html" in result.output and "cannot reach" not in result.output


# ------------------------------------------------------------------------------- keys create


@pytest.mark.parametrize("accounts", ["a", "1,b", "", "1,,2", "-1"])
def test_keys_create_checks_the_account_ids_before_running_anything(
    accounts: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_state(tmp_path, "http://127.0.0.1:4123", "ts_dev_x")
    monkeypatch.setenv("TURNSTOP_STATE_DIR", str(tmp_path))
    monkeypatch.setattr("turnstop_cli.app.subprocess.run", lambda *a, **k: pytest.fail("nothing may run"))
    result = run("keys", "create", "--tenant", "acme", f"--accounts={accounts}")
    assert result.exit_code == ExitCode.USAGE and "--accounts" in result.output


class Done:
    def __init__(self, stdout: str, returncode: int = 0) -> None:
        self.stdout, self.stderr, self.returncode = stdout, "", returncode


def test_keys_create_passes_values_that_look_like_options_as_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_state(tmp_path, "http://127.0.0.1:4123", "ts_dev_x")
    monkeypatch.setenv("TURNSTOP_STATE_DIR", str(tmp_path))
    calls: list[list[str]] = []

    def fake_run(argv: list[str], **kwargs: Any) -> Done:
        calls.append(argv)
        return Done("-ts_dashed\n")

    monkeypatch.setattr("turnstop_cli.app.subprocess.run", fake_run)
    result = run("keys", "create", "--tenant", "acme", "--accounts", "1, 2", "--key=-ts_dashed", "--name=-n")
    assert result.exit_code == 0, result.output
    assert result.stdout == "-ts_dashed\n"
    argv = calls[0]
    assert {"--key=-ts_dashed", "--name=-n", "--accounts=1,2", "--tenant=acme"} <= set(argv)


def test_keys_create_that_prints_no_key_is_an_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_state(tmp_path, "http://127.0.0.1:4123", "ts_dev_x")
    monkeypatch.setenv("TURNSTOP_STATE_DIR", str(tmp_path))
    monkeypatch.setattr("turnstop_cli.app.subprocess.run", lambda argv, **k: Done(""))
    result = run("keys", "create", "--tenant", "acme", "--accounts", "1")
    assert result.exit_code == ExitCode.API_ERROR and "printed no key" in result.output


# ------------------------------------------------------------------------ ends that must come


def test_a_chat_action_stuck_confirmed_ends_the_tail_as_incomplete(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread shows a failed action as `confirmed`, as it shows one being carried out."""
    monkeypatch.setattr("turnstop_cli.dialects.Chat.stuck_seconds", 0.2)
    thread = {"messages": [], "actions": [{"id": "act_1", "status": "confirmed"}]}
    seen = api(lambda request: httpx.Response(200, json=thread))
    result = run("tail", "thread_abc", "--chat-session", "s", "--interval", "0.05", "--json")
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.splitlines()[-1])
    assert (last["state"], last["event"]) == ("incomplete", "chat.confirmed")
    assert "confirm" in result.stderr and len(seen) >= 2


def test_a_bulk_cancel_is_followed_until_its_deadline_only(api: Any) -> None:
    seen = api(lambda request: httpx.Response(202, json={"id": "bulk_1", "status": "running", "failed": 0}))
    result = run("cancel", "--scope", "user", "bob", "--wait", "0", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "running"
    assert "turnstop status bulk_1" in result.stderr and len(seen) == 1


def test_a_running_bulk_report_without_an_id_is_an_api_error(api: Any) -> None:
    api(lambda request: httpx.Response(202, json={"status": "running"}))
    result = run("cancel", "--scope", "user", "bob")
    assert result.exit_code == ExitCode.API_ERROR and "no id" in result.output


def test_tail_into_a_closed_pipe_exits_quietly(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    api(lambda request: stream(sse((1, "message.delta", {"delta": "the "}), (2, "message.completed", {}))))

    def closed(self: Out, **kwargs: Any) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(Out, "tail_event", closed)
    result = run("tail", "sess_s/msg_m")
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "Traceback" not in result.output and "Broken pipe" not in result.output
