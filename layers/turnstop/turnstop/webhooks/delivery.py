"""Webhook delivery: the SSRF guard, and one POST with a deadline. Signing is
``webhooks/signing.py``.

The guard admits only ``https`` URLs without credentials whose host resolves to public
addresses; with ``allow_loopback`` (the local runtime) also ``http``/``https`` receivers on
127.0.0.1, ``localhost`` or ``[::1]``. It runs when a URL is accepted and again before every
delivery, and a delivery connects to exactly the addresses that were checked, so a second DNS
answer (rebinding) cannot redirect it. No I/O besides DNS and the POST itself.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_CHARS = 2048

Resolve = Callable[[str, int], list[str]]  # host, port -> IP addresses


class UnsafeUrl(ValueError):
    """A callback URL the guard refuses; the message says why (safe to show the caller)."""


def system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (the checked addresses) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def check_url(url: str, *, allow_loopback: bool = False, resolve: Resolve = system_resolve) -> Target:
    """The URL as a delivery ``Target``, or ``UnsafeUrl`` saying why not."""
    if len(url) > MAX_URL_CHARS:
        raise UnsafeUrl(f"must be at most {MAX_URL_CHARS} characters")
    if not url.isascii() or any(c.isspace() or not c.isprintable() for c in url):
        raise UnsafeUrl("must be an absolute URL of printable ASCII characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeUrl("must be an https:// URL")
    if "@" in parts.netloc:
        raise UnsafeUrl("must not contain credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeUrl("must name a host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl("has an invalid port") from None
    try:
        addresses = [host] if _is_ip(host) else resolve(host, port)
    except (OSError, UnicodeError):
        raise UnsafeUrl(f"host {host!r} does not resolve") from None
    if not addresses:
        raise UnsafeUrl(f"host {host!r} does not resolve")
    ips = [_ip(a) for a in addresses]
    loopback = all(ip.is_loopback for ip in ips)
    if not (allow_loopback and loopback):
        if scheme != "https":
            raise UnsafeUrl("must be an https:// URL")
        if not all(ip.is_global and not ip.is_multicast for ip in ips):
            raise UnsafeUrl(f"host {host!r} resolves to a private, loopback or reserved address")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, path, tuple(str(ip) for ip in ips))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Delivery:
    """What one POST came to: the receiver's status code, or why there was none."""

    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        return f"HTTP {self.status}" if self.status is not None else (self.error or "no answer")


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address, with SNI and certificate checks against the URL's host."""

    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def post(target: Target, body: bytes, headers: Mapping[str, str], timeout_s: float) -> Delivery:
    """POST ``body`` to the target's checked addresses (the next one if a connection fails),
    within ``timeout_s`` overall; only the status line and headers are read."""
    deadline = time.monotonic() + timeout_s
    error = "no address to connect to"
    for address in target.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Delivery(None, f"timeout after {timeout_s:g} s")
        cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        conn = cls(target, address, remaining)
        try:
            conn.request("POST", target.path, body=body, headers={"Host": target.host_header, **headers})
            if conn.sock is not None:
                conn.sock.settimeout(max(0.001, deadline - time.monotonic()))
            return Delivery(conn.getresponse().status)
        except TimeoutError:
            return Delivery(None, f"timeout after {timeout_s:g} s")
        except ssl.SSLError as e:
            return Delivery(None, f"TLS error: {e.reason or type(e).__name__}")
        except (OSError, http.client.HTTPException) as e:
            error = f"connection failed: {type(e).__name__}"
        finally:
            conn.close()
    return Delivery(None, error)
