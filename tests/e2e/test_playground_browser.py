"""The playground page (/playground) driven in headless Chromium against the local runtime.

A real browser exercises what curl cannot: the page's own fetch/SSE reading, the same-origin
cookie of the chat sign-in (OAuth code + PKCE through the dev OpenID provider), CSRF checks on
JSON posts, and the Stop button racing a live stream. Each flow saves a screenshot per step
(into the test's temporary directory; into docs/img with ``TURNSTOP_SCREENSHOTS_DIR=docs/img``,
see ``make screenshots``).

The browser is Debian's ``chromium`` package (``make install`` installs it where it can); the
test skips, saying why, only where it is missing.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT
from tests.e2e.conftest import DEV_KEY, LocalApi, sse_events

CHROMIUM = Path("/usr/bin/chromium")
# Without these Chromium waits on network services a closed network refuses (updates, sync, QUIC).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000
# The e2e runtime checks a turn's cancel flag every second (tests/e2e/conftest.py), plus a flush.
STOP_TO_END_BOUND_MS = 10_000

pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"no Chromium at {CHROMIUM}: `make install` installs Debian's chromium package only as root "
    "or with passwordless sudo, and where apt-get exists",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        # launch() gives every run a fresh temporary profile (--user-data-dir); never downloads a browser
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, local_api: LocalApi) -> Iterator[Any]:
    context = browser.new_context(base_url=local_api.url, viewport={"width": 1000, "height": 820})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"the page's script failed: {errors}"


@pytest.fixture
def shots(tmp_path: Path) -> Any:
    target = Path(os.environ.get("TURNSTOP_SCREENSHOTS_DIR") or tmp_path)
    target = target if target.is_absolute() else ROOT / target
    target.mkdir(parents=True, exist_ok=True)

    def shoot(page: Any, name: str) -> None:
        page.screenshot(path=str(target / f"playground-{name}.png"))

    return shoot


def open_playground(page: Any, dialect: str) -> None:
    page.goto(f"/playground?dialect={dialect}")
    if dialect != "chat":
        # the local runtime hands its dev key to its own page
        expect(page.locator("#api-key")).to_have_value(DEV_KEY)
    assert page.locator("#dialect").input_value() == dialect


def at_least(chars: int) -> re.Pattern[str]:
    """Text of at least ``chars`` characters (the page's own CSP forbids evaluated wait functions)."""
    return re.compile(rf"^[\s\S]{{{chars},}}$")


def start_and_wait_for_tokens(page: Any, minimum_chars: int = 40) -> str:
    page.click("#start")
    expect(page.locator("#output")).to_have_text(at_least(minimum_chars))
    expect(page.locator("#stop")).to_be_enabled()
    return str(page.locator("#output").text_content())


def stop_and_wait_for_end(page: Any, cancelled_status: str = "cancelled") -> int:
    page.click("#stop")
    page.wait_for_selector(f"#status[data-status='{cancelled_status}']")
    page.wait_for_selector("#turn[data-ended='true']")
    expect(page.locator("#billing")).to_have_text(re.compile(r"^billed: "))
    latency = int(str(page.get_attribute("#stop-latency", "data-ms")))
    assert 0 < latency < STOP_TO_END_BOUND_MS
    return latency


def api_json(local_api: LocalApi, path: str) -> Any:
    request = urllib.request.Request(local_api.url + path, headers={"Authorization": f"Bearer {local_api.key}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def turn_text(local_api: LocalApi, session_id: str, turn_id: str) -> str:
    """The whole text of a finished session turn, replayed from its first event."""
    url = f"{local_api.url}/v1/sessions/{session_id}/responses/{turn_id}/events"
    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {local_api.key}"}, timeout=10) as answer:
        assert answer.status_code == 200
        events = list(sse_events(answer.iter_lines()))
    assert events[-1]["event"] == "message.cancelled"
    return "".join(event["data"]["delta"] for event in events if event["event"] == "message.delta")


def test_sessions_stream_stops_from_the_stop_button_and_resumes(page: Any, local_api: LocalApi, shots: Any) -> None:
    # Given the playground on the sessions dialect, streaming a long turn
    open_playground(page, "sessions")
    start_and_wait_for_tokens(page)
    assert page.locator("#status").get_attribute("data-status") == "running"
    turn_id = str(page.locator("#turn-id").text_content())
    assert turn_id.startswith("msg_")
    shots(page, "sessions-streaming")

    # When the reader reconnects from its last event id, the turn goes on on the resumed stream
    page.click("#reconnect")
    resumed = re.compile(r"reconnect after event \d+.*GET /v1/sessions/\w+/responses/" + turn_id + r"/events → 200")
    expect(page.locator("#log")).to_have_text(resumed)
    resumed_at = len(str(page.locator("#output").text_content()))
    expect(page.locator("#output")).to_have_text(at_least(resumed_at + 40))

    # And Stop is pressed
    stop_and_wait_for_end(page)

    # Then the page shows the terminal cancelled event, its usage, and nothing billed
    assert page.locator("#terminal").text_content() == "message.cancelled (billed: false)"
    usage = json.loads(str(page.locator("#usage").text_content()))
    assert usage["output_tokens"] > 0
    assert page.locator("#billing").text_content() == "billed: false (no ledger entry for this turn)"
    assert "nothing billed" in str(page.locator("#ledger").text_content())
    assert page.locator("#stop").is_disabled() and page.locator("#start").is_enabled()
    shots(page, "sessions-stopped")
    # and the API agrees: the ledger holds nothing for the turn, and the text the page shows,
    # read live then resumed, is the turn's text exactly (no gap, no repeat at the reconnect)
    assert api_json(local_api, f"/v1/ledger?response_id={turn_id}")["data"] == []
    session_id = str(page.evaluate("turn.sessionId"))
    assert page.locator("#output").text_content() == turn_text(local_api, session_id, turn_id)


def test_llm_background_response_resumes_stops_and_is_not_billed(page: Any, local_api: LocalApi, shots: Any) -> None:
    # Given a background LLM response streaming in the page
    open_playground(page, "llm")
    start_and_wait_for_tokens(page)
    turn_id = str(page.locator("#turn-id").text_content())
    assert turn_id.startswith("resp_")

    # When the reader reconnects (GET ?stream=true&starting_after=<last sequence_number>)
    page.click("#reconnect")
    resumed = re.compile(rf"GET /api/v1/llm/responses/{turn_id}\?stream=true&starting_after=\d+ → 200")
    expect(page.locator("#log")).to_have_text(resumed)
    resumed_at = len(str(page.locator("#output").text_content()))
    expect(page.locator("#output")).to_have_text(at_least(resumed_at + 40))

    # And Stop is pressed
    stop_and_wait_for_end(page)

    # Then the stream ends with response.cancelled and the ledger's usage entry says billed: false
    assert page.locator("#terminal").text_content() == "response.cancelled"
    assert json.loads(str(page.locator("#usage").text_content()))["output_tokens"] > 0
    assert page.locator("#billing").text_content() == "billed: false (usage recorded)"
    shots(page, "llm-stopped")
    # and the text shown, live then resumed, is the response's output exactly
    response = api_json(local_api, f"/api/v1/llm/responses/{turn_id}")
    assert response["status"] == "cancelled"
    assert page.locator("#output").text_content() == response["output"][0]["content"][0]["text"]


def test_task_stops_and_is_refunded_in_full(page: Any, local_api: LocalApi, shots: Any) -> None:
    # Given a long task whose output the page polls
    open_playground(page, "tasks")
    start_and_wait_for_tokens(page, minimum_chars=10)
    turn_id = str(page.locator("#turn-id").text_content())

    # When Stop is pressed
    stop_and_wait_for_end(page)

    # Then it ends cancelled, charged and refunded the same amount
    assert page.locator("#terminal").text_content() == "status: cancelled"
    billing = str(page.locator("#billing").text_content())
    charged = re.fullmatch(r"billed: false \(charged ([\d.]+) credits, refunded ([\d.]+)\)", billing)
    assert charged and charged.group(1) == charged.group(2) and float(charged.group(1)) > 0
    ledger = [json.loads(line) for line in str(page.locator("#ledger").text_content()).splitlines()]
    assert [entry["kind"] for entry in ledger] == ["charge", "refund"]
    shots(page, "tasks-stopped")
    assert api_json(local_api, f"/v1/tasks/{turn_id}")["status"] == "cancelled"


def test_omni_response_stops_and_is_not_billed(page: Any, local_api: LocalApi, shots: Any) -> None:
    # Given an omni thread whose response the page polls
    open_playground(page, "omni")
    start_and_wait_for_tokens(page, minimum_chars=10)
    turn_id = str(page.locator("#turn-id").text_content())

    # When Stop is pressed (DELETE /v1/omni-ai/responses/{id})
    stop_and_wait_for_end(page)

    # Then the response is canceled, and the ledger's usage entry says billed: false
    assert page.locator("#terminal").text_content() == "status: canceled"
    assert page.locator("#billing").text_content() == "billed: false (usage recorded)"
    shots(page, "omni-stopped")
    assert api_json(local_api, f"/v1/omni-ai/responses/{turn_id}?account_id=1")["data"]["status"] == "canceled"


def test_chat_signs_in_cancels_the_pending_action_and_stops_a_reply(page: Any, shots: Any) -> None:
    # Given a user signed in through the dev OpenID provider (code + PKCE, back to the page)
    open_playground(page, "chat")
    page.wait_for_selector("#sign-in:not([hidden])")
    page.fill("#login-hint", "alice")
    page.click("#sign-in")
    page.wait_for_url(re.compile(r"/playground\?dialect=chat$"))
    expect(page.locator("#signin-state")).to_have_attribute("data-user", "alice")
    assert page.locator("#dialect").input_value() == "chat"
    shots(page, "chat-signed-in")

    # When the agent plans an action that needs confirmation
    page.click("#start")
    page.wait_for_selector("#confirmation:not([hidden])")
    assert "Project Review" in str(page.locator("#confirmation-message").text_content())
    assert page.locator("#action").text_content() == "pending"
    shots(page, "chat-confirmation")

    # And the user clicks Cancel
    page.click("#cancel-action")

    # Then the action shows cancelled, and it was never executed
    expect(page.locator("#action")).to_have_attribute("data-status", "cancelled")
    assert re.fullmatch(r'cancelled: \w+ ".*Project Review.*" \(act_\w+\)', str(page.locator("#action").text_content()))
    assert page.locator("#status").get_attribute("data-status") == "cancelled"
    assert page.locator("#terminal").text_content() == "Action cancelled."
    assert page.locator("#confirmation").is_hidden()
    shots(page, "chat-cancelled")

    # And a long reply in the same thread stops from the Stop button (POST /chat/cancel)
    page.fill("#prompt", "Write a 5000-word essay on cryptography")
    start_and_wait_for_tokens(page)
    stop_and_wait_for_end(page)
    assert page.locator("#terminal").text_content() == "cancelled"
    shots(page, "chat-reply-stopped")
