"""The playground: a page of the local runtime (``/playground``) that starts a turn in any
dialect, streams it, and stops it, with the same routes and credentials an SDK uses.

The page is three static files (``static/``: HTML, one script, one stylesheet; no build step, no
CDN) and one local-only JSON endpoint, ``/playground/dev-key``, that hands the page the dev API
key of ``python -m turnstop_local serve``. Nothing here is in template.yaml: a deployed stack has
no playground and no way to read a key.

The dev key is given only to the page itself: the request must name a loopback host (a page of
another site that rebinds its DNS name to 127.0.0.1 sends its own name) and, when the browser says
where the request comes from (``Origin``, ``Sec-Fetch-Site``), come from this origin.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from turnstop_local.apigw import HttpResponse, json_message

__all__ = ["PREFIX", "Playground"]

PREFIX = "/playground"
STATIC = Path(__file__).resolve().parent / "static"
_FILES = {
    PREFIX: ("index.html", "text/html; charset=utf-8"),
    PREFIX + "/": ("index.html", "text/html; charset=utf-8"),
    PREFIX + "/dialects.js": ("dialects.js", "text/javascript; charset=utf-8"),
    PREFIX + "/playground.js": ("playground.js", "text/javascript; charset=utf-8"),
    PREFIX + "/playground.css": ("playground.css", "text/css; charset=utf-8"),
}
DEV_KEY_PATH = PREFIX + "/dev-key"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# The page loads nothing from elsewhere and talks only to this origin.
_SECURITY_HEADERS = [
    (
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
]


class Headers(Protocol):
    """A request's headers, looked up by name (an ``email.message.Message`` or a dict)."""

    def get(self, name: str, /) -> str | None: ...


@dataclass
class Playground:
    """Answers ``/playground`` requests; ``dev_key`` is set by ``serve`` once the key is stored."""

    dev_key: str | None = None
    account_ids: list[int] = field(default_factory=lambda: [1])
    tenant: str = "dev"

    def enable_dev_key(self, key: str, account_ids: list[int], tenant: str) -> None:
        """Offer ``key`` (stored for ``tenant``, acting for ``account_ids``) to the page."""
        self.dev_key, self.account_ids, self.tenant = key, list(account_ids), tenant

    def answer(self, method: str, path: str, headers: Headers, peer: str = "127.0.0.1") -> HttpResponse | None:
        """The answer to a playground request, or None when ``path`` is not the playground's.
        ``peer``: the client's address (the dev key is only ever given to a loopback client)."""
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            return None
        if method not in ("GET", "HEAD"):
            return HttpResponse(
                405, [("content-type", "application/json"), ("allow", "GET, HEAD")], b'{"message":"Method Not Allowed"}'
            )
        if path == DEV_KEY_PATH:
            return self._dev_key(headers, peer)
        if path not in _FILES:
            return json_message(404, "Not Found")
        name, content_type = _FILES[path]
        body = (STATIC / name).read_bytes()
        return HttpResponse(
            200, [("content-type", content_type), ("cache-control", "no-cache"), *_SECURITY_HEADERS], body
        )

    def _dev_key(self, headers: Headers, peer: str) -> HttpResponse:
        if self.dev_key is None:
            return json_message(404, "No dev API key: this local runtime was started without one")
        if not is_loopback_address(peer) or not same_origin_loopback(headers):
            return json_message(403, "The dev API key is only given to the playground page on a loopback address")
        body = json.dumps({"key": self.dev_key, "tenant": self.tenant, "account_ids": self.account_ids}).encode()
        return HttpResponse(
            200, [("content-type", "application/json"), ("cache-control", "no-store"), *_SECURITY_HEADERS], body
        )


def is_loopback_address(peer: str) -> bool:
    """Whether a client address is this machine's own (a server bound wider stays safe)."""
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


def same_origin_loopback(headers: Headers) -> bool:
    """Whether a request names a loopback host and, where the browser says so, comes from it."""
    host = headers.get("Host") or ""
    try:
        hostname = urlsplit("//" + host).hostname or ""
    except ValueError:  # a malformed Host, e.g. "[::1"
        return False
    if hostname not in _LOOPBACK_HOSTS:
        return False
    fetch_site = (headers.get("Sec-Fetch-Site") or "").lower()
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return False
    origin = headers.get("Origin")
    return origin is None or origin in (f"http://{host}", f"https://{host}")
