"""Every method on every path answered the way API Gateway's HTTP API answers it: a method no
route has (TRACE, CONNECT, one made up) gets the gateway's own ``404 {"message":"Not Found"}``,
never a 5xx (http.server's ``501 Unsupported method`` was one)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import LocalApi

STANDARD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
MADE_UP = "FROBNICATE"
HTTP_METHODS = {m.lower() for m in STANDARD}
# routes the template has beyond the documents: the browser APIs' CORS preflights
PREFLIGHT = ("/chat", "/auth/")


@pytest.fixture
def anonymous(local_api: LocalApi) -> Iterator[httpx.Client]:
    # no credentials: a documented method answers its dialect's 401 (or a public route's answer)
    # and changes nothing
    with httpx.Client(base_url=local_api.url, timeout=60, follow_redirects=False) as c:
        yield c


def concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", template)


def matches(template: str, path: str) -> bool:
    """Whether a documented path template routes ``path`` (``/v1/tasks/cancel`` is also a task id)."""
    want, got = template.split("/"), path.split("/")
    return len(want) == len(got) and all(w == g or (w.startswith("{") and g) for w, g in zip(want, got, strict=True))


def test_every_method_on_every_documented_path_is_never_a_5xx_and_unrouted_ones_are_the_gateways_404(
    anonymous: httpx.Client,
) -> None:
    paths = anonymous.get("/openapi.json").json()["paths"]
    server_errors: list[str] = []
    not_gateway: list[str] = []
    asked = [(t, m) for t in [*paths, "/no/such/route"] for m in (*STANDARD, MADE_UP)]
    # Four at a time, as concurrent callers would: no one is signed in, so nothing changes and order cannot matter.
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda ask: anonymous.request(ask[1], concrete(ask[0])), asked))
    for (template, method), r in zip(asked, answers, strict=True):
        path = concrete(template)
        routed = {m.upper() for t, i in paths.items() if matches(t, path) for m in i if m in HTTP_METHODS}
        if r.status_code >= 500:
            server_errors.append(f"{method} {template} -> {r.status_code} {r.text[:120]!r}")
        if method in routed or (method == "OPTIONS" and template.startswith(PREFLIGHT)):
            continue
        body_ok = method == "HEAD" or (
            r.headers.get("content-type") == "application/json" and r.json() == {"message": "Not Found"}
        )
        if r.status_code != 404 or not body_ok:
            not_gateway.append(f"{method} {template} -> {r.status_code} {r.text[:120]!r}")
    assert not server_errors, "\n".join(server_errors)
    assert not not_gateway, "\n".join(not_gateway)
