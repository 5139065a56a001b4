"""An HTTP transport whose connections belong to one model call and can be shut from any thread.

Built on ``httpx2`` / ``httpcore2``, the HTTP stack the ``openai`` SDK ships with (so the layer
needs nothing more). ``AbortableTransport`` is an ``httpx2.HTTPTransport`` over a small
connection pool of its own whose ``NetworkBackend`` records every socket it opens. One transport
serves one call (or one attempt of it): an abort never touches another turn's connection, and an
aborted connection is never reused.

``abort()`` (from any thread, idempotent) works in every phase:

- **connecting**: the connect is non-blocking and waits in short ``poll`` slices that check the
  abort flag; the abort also shuts the connecting socket (on Linux that cancels a ``SYN_SENT``
  connect and wakes the poll at once).
- **TLS handshake, waiting for response headers (a long prefill), waiting for the first byte,
  mid-stream**: the socket is shut with ``shutdown(SHUT_RDWR)``, which sends a FIN at once and
  wakes a ``recv`` blocked in another thread (closing a socket from another thread does not, on
  Linux). Each connection keeps a ``dup`` of its socket's file descriptor for this: shutting the
  duplicate shuts the one connection underneath, even once the socket has been wrapped in an
  ``SSLSocket`` (whose ``shutdown`` would try a TLS close first); the duplicate is closed with
  the connection.

Name resolution (``getaddrinfo``) cannot be interrupted; the abort is seen right after it.

Reads also honour a deadline the call supplies (``read_deadline``: an absolute
``time.monotonic()`` value, or None): each read waits at most until then, so a first-byte or an
idle timeout ends a blocked read without a watchdog thread. The transport records what happened
(``connected``, ``bytes_received``, ``timed_out``) so the call can name the failure.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import httpcore2
import httpx2
from httpcore2._backends.sync import SyncStream  # the plain socket stream (pinned with openai)

CONNECT_SLICE_S = 0.05  # the longest a connect waits between two looks at the abort flag
_IN_PROGRESS = (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY)

Deadline = Callable[[], float | None]


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every call (building one reads the CA bundle)."""
    return httpx2.create_ssl_context(trust_env=False)


def _shutdown(sock: socket.socket) -> None:
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer, or never connected


class AbortableTransport(httpx2.HTTPTransport):
    """An httpx2 transport for one call; ``abort()`` shuts its connections from any thread."""

    def __init__(
        self,
        *,
        read_deadline: Deadline | None = None,
        max_connections: int = 4,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        # Deliberately not HTTPTransport.__init__: the same pool, with our network backend.
        self._read_deadline = read_deadline
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()  # duplicates of the open connections' sockets
        self._aborted = False
        self.connected = False  # a TCP (and TLS) connection was established
        self.bytes_received = 0
        self.timed_out = False  # a connect or read deadline passed
        self._pool = httpcore2.ConnectionPool(
            ssl_context=ssl_context or _ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
            network_backend=_Backend(self),
        )

    @property
    def aborted(self) -> bool:
        return self._aborted

    def abort(self) -> None:
        """Shut every connection of this transport now (any thread, idempotent)."""
        with self._lock:
            self._aborted = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)

    def close(self) -> None:
        try:
            super().close()
        finally:
            with self._lock:
                sockets, self._sockets = list(self._sockets), set()
            for sock in sockets:
                sock.close()

    # -- used by the backend and its streams ---------------------------------------------------
    def _adopt(self, sock: socket.socket) -> socket.socket:
        """Keep a duplicate of a new socket's descriptor; shut it at once if already aborted."""
        dup = sock.dup()
        with self._lock:
            self._sockets.add(dup)
            aborted = self._aborted
        if aborted:
            _shutdown(dup)
        return dup

    def _release(self, dup: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(dup)
        dup.close()

    def _read_timeout(self, timeout: float | None) -> float | None:
        deadline = self._read_deadline() if self._read_deadline is not None else None
        if deadline is None:
            return timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            self.timed_out = True
            raise httpcore2.ReadTimeout("the read deadline passed")
        return remaining if timeout is None else min(timeout, remaining)


class _Stream(httpcore2.NetworkStream):
    """A connection's stream: reads bounded by the call's deadline, its socket registered."""

    def __init__(self, inner: httpcore2.NetworkStream, owner: AbortableTransport, dup: socket.socket) -> None:
        self._inner = inner
        self._owner = owner
        self._dup = dup
        self._closed = False

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            data = self._inner.read(max_bytes, self._owner._read_timeout(timeout))
        except httpcore2.ReadTimeout:
            self._owner.timed_out = True
            raise
        self._owner.bytes_received += len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            if not self._closed:
                self._closed = True
                self._owner._release(self._dup)

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        try:
            inner = self._inner.start_tls(ssl_context, server_hostname, timeout)
        except httpcore2.ConnectTimeout:
            self._owner.timed_out = True
            self.close()
            raise
        except BaseException:
            self.close()
            raise
        return _Stream(inner, self._owner, self._dup)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore2.NetworkBackend):
    """Opens the transport's sockets: an abortable connect, each socket registered."""

    def __init__(self, owner: AbortableTransport) -> None:
        self._owner = owner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        owner = self._owner
        if owner.aborted:
            raise httpcore2.ConnectError("aborted")
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise httpcore2.ConnectError("cannot resolve the upstream's host") from None
        last: OSError | None = None
        for family, kind, proto, _, address in addresses:
            sock = socket.socket(family, kind, proto)
            dup: socket.socket | None = None
            try:
                if local_address is not None:
                    sock.bind((local_address, 0))
                for option in socket_options or ():
                    sock.setsockopt(*option)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                dup = owner._adopt(sock)
                self._connect(sock, address, deadline)
                sock.setblocking(True)
                owner.connected = True
                return _Stream(SyncStream(sock), owner, dup)
            except OSError as e:
                sock.close()
                if dup is not None:
                    owner._release(dup)
                last = e
            except BaseException:
                sock.close()
                if dup is not None:
                    owner._release(dup)
                raise
        raise httpcore2.ConnectError(
            f"cannot connect ({os.strerror(last.errno) if last and last.errno else 'no address'})"
        )

    def _connect(self, sock: socket.socket, address: Any, deadline: float | None) -> None:
        owner = self._owner
        sock.setblocking(False)
        err = sock.connect_ex(address)
        if err == 0:
            return
        if err not in _IN_PROGRESS:
            raise OSError(err, os.strerror(err))
        poller = select.poll()
        poller.register(sock, select.POLLOUT | select.POLLERR | select.POLLHUP)
        while True:
            if owner.aborted:
                raise httpcore2.ConnectError("aborted")
            wait = CONNECT_SLICE_S
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    owner.timed_out = True
                    raise httpcore2.ConnectTimeout("connect timed out")
                wait = min(wait, remaining)
            if poller.poll(wait * 1000):
                break
        if owner.aborted:
            raise httpcore2.ConnectError("aborted")
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.NetworkStream:
        raise httpcore2.ConnectError("unix sockets are not supported")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def client(transport: AbortableTransport, *, connect_timeout_s: float, timeout_s: float | None = None) -> httpx2.Client:
    """An httpx2 client over ``transport``: the connect timeout given, reads bounded by the
    transport's deadline (or ``timeout_s``), no proxies from the environment (a proxy's
    transport would bypass the abortable one)."""
    timeout = httpx2.Timeout(timeout_s, connect=connect_timeout_s)
    return httpx2.Client(transport=transport, timeout=timeout, trust_env=False, follow_redirects=False)
