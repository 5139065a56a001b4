"""The playground's local-only answers: its static files, and the dev key given only to itself."""

from __future__ import annotations

import json

import pytest

from turnstop_local.playground import Playground

KEY = "ts_dev_unit_key_0123456789abcdef"


def playground() -> Playground:
    page = Playground()
    page.enable_dev_key(KEY, [1, 2], "dev")
    return page


@pytest.mark.parametrize(
    "path",
    [
        "/playground",
        "/playground/",
        "/playground/dialects.js",
        "/playground/playground.js",
        "/playground/playground.css",
    ],
)
def test_static_files_are_served_with_a_strict_content_security_policy(path: str) -> None:
    answer = playground().answer("GET", path, {"Host": "127.0.0.1:3000"})
    assert answer is not None and answer.status == 200 and answer.body
    headers = dict(answer.headers)
    assert headers["content-security-policy"].startswith("default-src 'self'")  # no CDN, no inline script
    assert headers["x-content-type-options"] == "nosniff"


def test_the_page_loads_nothing_from_another_origin() -> None:
    html = playground().answer("GET", "/playground", {}).body.decode()  # type: ignore[union-attr]
    assert "http://" not in html and "https://" not in html and "<script>" not in html


def test_other_paths_are_not_the_playgrounds() -> None:
    page = playground()
    assert page.answer("GET", "/v1/sessions", {}) is None
    assert page.answer("GET", "/playgroundx", {}) is None
    unknown = page.answer("GET", "/playground/../template.yaml", {})
    assert unknown is not None and unknown.status == 404


def test_only_reads_are_allowed() -> None:
    answer = playground().answer("POST", "/playground/dev-key", {"Host": "127.0.0.1:3000"})
    assert answer is not None and answer.status == 405 and ("allow", "GET, HEAD") in answer.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "127.0.0.1:3000"},  # curl, or the address bar
        {"Host": "localhost:3000", "Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-origin"},
        {"Host": "[::1]:3000", "Sec-Fetch-Site": "none"},
    ],
)
def test_the_dev_key_is_given_to_the_page_on_a_loopback_address(headers: dict[str, str]) -> None:
    answer = playground().answer("GET", "/playground/dev-key", headers)
    assert answer is not None and answer.status == 200
    assert json.loads(answer.body) == {"key": KEY, "tenant": "dev", "account_ids": [1, 2]}
    assert ("cache-control", "no-store") in answer.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "rebound.example:3000"},  # a site whose name was rebound to 127.0.0.1
        {"Host": "127.0.0.1:3000", "Origin": "http://evil.example"},  # another site's script
        {"Host": "127.0.0.1:3000", "Origin": "http://127.0.0.1:4000"},  # another local port
        {"Host": "127.0.0.1:3000", "Sec-Fetch-Site": "cross-site"},
        {"Host": "127.0.0.1:3000", "Sec-Fetch-Site": "same-site"},
        {"Host": "[::1"},  # malformed: refused, not an error
        {},
    ],
)
def test_the_dev_key_is_refused_to_anyone_else(headers: dict[str, str]) -> None:
    answer = playground().answer("GET", "/playground/dev-key", headers)
    assert answer is not None and answer.status == 403
    assert KEY.encode() not in answer.body


@pytest.mark.parametrize("peer", ["192.168.1.20", "10.0.0.7", "not-an-address"])
def test_the_dev_key_is_refused_to_a_client_on_another_machine_whatever_host_it_names(peer: str) -> None:
    """A runtime bound wider than loopback must still give the key to this machine only."""
    answer = playground().answer("GET", "/playground/dev-key", {"Host": "127.0.0.1:3000"}, peer)
    assert answer is not None and answer.status == 403
    assert KEY.encode() not in answer.body


def test_without_a_dev_key_the_page_asks_for_one() -> None:
    answer = Playground().answer("GET", "/playground/dev-key", {"Host": "127.0.0.1:3000"})
    assert answer is not None and answer.status == 404
    assert json.loads(answer.body) == {"message": "No dev API key: this local runtime was started without one"}
