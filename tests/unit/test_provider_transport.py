"""The abortable transport: an abort from another thread ends a blocked request in every phase.

Raw loopback servers play the upstream: one whose listener never accepts (its backlog is full),
one that accepts and never answers (a silent prefill), one that sends headers then stalls, one
that stalls mid-body. The test waits for the phase (a server event, or the transport's own
state), aborts from the test thread, and waits with a deadline for the request to end and for
the server to see the disconnect. No sleeps as synchronisation, no timed assertions.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest

from turnstop.providers.transport import AbortableTransport, client

DEADLINE_S = 10.0


def wait_until(predicate: Callable[[], Any], timeout: float = DEADLINE_S, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy (a deadline, not a timing assertion)."""
    end = time.monotonic() + timeout
    event = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        event.wait(0.005)


@dataclass
class Conn:
    sock: socket.socket
    request: bytes = b""
    got_request: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)


class RawServer:
    """A loopback TCP server: ``script(conn)`` runs per connection after its request arrived;
    afterwards the server watches for the client's EOF (``conn.disconnected``)."""

    def __init__(
        self, script: Callable[[Conn], None] | None = None, *, accept: bool = True, tls: ssl.SSLContext | None = None
    ) -> None:
        self.tls = tls
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0 if not accept else 16)
        self.port = self.listener.getsockname()[1]
        self.script = script
        self.conns: list[Conn] = []
        self._fillers: list[socket.socket] = []
        self._stop = threading.Event()
        if accept:
            threading.Thread(target=self._accept, daemon=True).start()
        else:
            self._fill_backlog()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _fill_backlog(self) -> None:
        """Connect until a connect no longer completes: the listener's queue is full."""
        for _ in range(64):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            self._fillers.append(s)
            import select

            _, writable, _ = select.select([], [s], [], 0.5)
            if not writable:
                return
        raise AssertionError("could not fill the listener's backlog")

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            conn = Conn(sock)
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Conn) -> None:
        try:
            if self.tls is not None:
                conn.sock.settimeout(DEADLINE_S)
                conn.sock = self.tls.wrap_socket(conn.sock, server_side=True)
            conn.sock.settimeout(0.2)
            while b"\r\n\r\n" not in conn.request and not self._stop.is_set():
                try:
                    data = conn.sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    conn.disconnected.set()
                    return
                conn.request += data
            head, _, rest = conn.request.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            while len(rest) < length:
                data = conn.sock.recv(65536)
                if not data:
                    break
                rest += data
            conn.request = head + b"\r\n\r\n" + rest
            conn.got_request.set()
            if self.script is not None:
                self.script(conn)
            while not self._stop.is_set():  # watch for the client's EOF
                try:
                    if not conn.sock.recv(65536):
                        break
                except TimeoutError:
                    continue
            conn.disconnected.set()
        except OSError:
            conn.disconnected.set()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        for s in self._fillers:
            s.close()
        for c in self.conns:
            c.sock.close()


@pytest.fixture
def servers() -> Iterator[Callable[..., RawServer]]:
    made: list[RawServer] = []

    def make(
        script: Callable[[Conn], None] | None = None, *, accept: bool = True, tls: ssl.SSLContext | None = None
    ) -> RawServer:
        made.append(RawServer(script, accept=accept, tls=tls))
        return made[-1]

    yield make
    for s in made:
        s.close()


def headers_then(
    body_parts: list[bytes], *, stall: bool = True, content_type: str = "text/event-stream"
) -> Callable[[Conn], None]:
    """Send a chunked 200's headers, the given parts, then stall (or end the body)."""

    def script(conn: Conn) -> None:
        head = f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n"
        conn.sock.sendall(head.encode())
        for part in body_parts:
            conn.sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        if not stall:
            conn.sock.sendall(b"0\r\n\r\n")

    return script


class Runner:
    """Runs a streamed GET on its own thread and keeps what happened."""

    def __init__(self, transport: AbortableTransport, url: str) -> None:
        self.transport = transport
        self.body = b""
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self.thread.start()

    def _run(self, url: str) -> None:
        try:
            with client(self.transport, connect_timeout_s=30) as http, http.stream("GET", url) as response:
                for part in response.iter_raw():
                    self.body += part
        except BaseException as e:  # noqa: BLE001 (kept for the assertions)
            self.error = e
        finally:
            self.transport.close()
            self.done.set()

    def wait(self) -> None:
        assert self.done.wait(DEADLINE_S), "the request did not end after the abort"


def test_abort_while_connecting_to_a_listener_that_never_accepts(servers: Callable[..., RawServer]) -> None:
    server = servers(accept=False)
    transport = AbortableTransport()
    run = Runner(transport, server.url + "/v1")
    wait_until(lambda: transport._sockets, what="the connect to start")
    assert not transport.connected
    transport.abort()
    run.wait()
    assert isinstance(run.error, httpx2.ConnectError)
    assert not transport.connected and not transport.timed_out


def test_abort_while_waiting_for_headers(servers: Callable[..., RawServer]) -> None:
    server = servers()  # reads the request, never answers: a long prefill
    transport = AbortableTransport()
    run = Runner(transport, server.url + "/v1")
    wait_until(lambda: server.conns and server.conns[0].got_request.is_set(), what="the request")
    transport.abort()
    run.wait()
    assert isinstance(run.error, httpx2.TransportError)
    assert server.conns[0].disconnected.wait(DEADLINE_S), "the upstream never saw the disconnect"


def test_abort_after_headers_before_the_first_byte(servers: Callable[..., RawServer]) -> None:
    server = servers(headers_then([]))
    transport = AbortableTransport()
    run = Runner(transport, server.url + "/v1")
    wait_until(lambda: transport.bytes_received, what="the headers")
    transport.abort()
    run.wait()
    assert run.error is not None and run.body == b""
    assert server.conns[0].disconnected.wait(DEADLINE_S)


def test_abort_mid_stream(servers: Callable[..., RawServer]) -> None:
    server = servers(headers_then([b"data: one\n\n", b"data: two\n\n"]))
    transport = AbortableTransport()
    run = Runner(transport, server.url + "/v1")
    wait_until(lambda: run.body.count(b"data:") == 2, what="two events")
    transport.abort()
    run.wait()
    assert run.error is not None
    assert server.conns[0].disconnected.wait(DEADLINE_S)


def test_abort_during_a_tls_handshake_the_server_never_answers(servers: Callable[..., RawServer]) -> None:
    server = servers()  # a TCP server that never speaks TLS: the handshake blocks
    transport = AbortableTransport()
    run = Runner(transport, f"https://127.0.0.1:{server.port}/v1")
    wait_until(lambda: transport.connected, what="the TCP connection")  # then the handshake waits
    transport.abort()
    run.wait()
    assert isinstance(run.error, httpx2.TransportError)


def test_abort_before_the_request_starts_never_connects(servers: Callable[..., RawServer]) -> None:
    server = servers()
    transport = AbortableTransport()
    transport.abort()
    run = Runner(transport, server.url + "/v1")
    run.wait()
    assert isinstance(run.error, httpx2.ConnectError)
    assert not server.conns


def test_an_abort_touches_only_its_own_transport(servers: Callable[..., RawServer]) -> None:
    server = servers(headers_then([b"data: one\n\n"]))
    first, second = AbortableTransport(), AbortableTransport()
    a, b = Runner(first, server.url + "/a"), Runner(second, server.url + "/b")
    wait_until(lambda: a.body and b.body, what="both streams")
    first.abort()
    a.wait()
    assert not b.done.is_set()  # the other stream is still open
    wait_until(lambda: sum(c.disconnected.is_set() for c in server.conns) == 1, what="one disconnect")
    second.abort()
    b.wait()


def test_the_read_deadline_ends_a_silent_read(servers: Callable[..., RawServer]) -> None:
    server = servers(headers_then([b"data: one\n\n"]))
    seen: list[float] = []

    def deadline() -> float | None:  # none until the first bytes, then 1 s of silence
        if transport.bytes_received and not seen:
            seen.append(time.monotonic())
        return seen[0] + 1.0 if seen else None

    transport = AbortableTransport(read_deadline=deadline)
    run = Runner(transport, server.url + "/v1")
    run.wait()
    assert run.body == b"data: one\n\n"
    assert isinstance(run.error, httpx2.ReadTimeout) and transport.timed_out
    assert server.conns[0].disconnected.wait(DEADLINE_S)


def test_a_complete_answer_reads_normally_and_closes_its_socket(servers: Callable[..., RawServer]) -> None:
    server = servers(headers_then([b"hello"], stall=False))
    transport = AbortableTransport()
    run = Runner(transport, server.url + "/v1")
    run.wait()
    assert run.error is None and run.body == b"hello"
    assert not transport._sockets  # closed with the transport: the connection is never reused
    assert server.conns[0].disconnected.wait(DEADLINE_S)


def test_connect_refused_is_a_connect_error() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    run = Runner(AbortableTransport(), f"http://127.0.0.1:{port}/v1")
    run.wait()
    assert isinstance(run.error, httpx2.ConnectError)


def test_connect_timeout_is_a_timeout(servers: Callable[..., RawServer]) -> None:
    server = servers(accept=False)
    transport = AbortableTransport()
    with client(transport, connect_timeout_s=0.2) as http, pytest.raises(httpx2.ConnectTimeout):
        http.get(server.url + "/v1")
    assert transport.timed_out


@pytest.fixture
def tls_pair(tmp_path: Any) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for 127.0.0.1, and a client context trusting it."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=str(cert_file))


@pytest.mark.parametrize("phase", ["waiting for headers", "mid-stream"])
def test_abort_over_tls(
    servers: Callable[..., RawServer], tls_pair: tuple[ssl.SSLContext, ssl.SSLContext], phase: str
) -> None:
    """The socket is an SSLSocket by then: the abort shuts its descriptor's duplicate."""
    server_ctx, client_ctx = tls_pair
    server = servers(None if phase == "waiting for headers" else headers_then([b"data: one\n\n"]), tls=server_ctx)
    transport = AbortableTransport(ssl_context=client_ctx)
    run = Runner(transport, f"https://127.0.0.1:{server.port}/v1")
    if phase == "mid-stream":
        wait_until(lambda: run.body, what="the first event")
    else:
        wait_until(lambda: server.conns and server.conns[0].got_request.is_set(), what="the request")
    transport.abort()
    run.wait()
    assert isinstance(run.error, httpx2.TransportError)
    assert server.conns[0].disconnected.wait(DEADLINE_S), "the upstream never saw the disconnect"
