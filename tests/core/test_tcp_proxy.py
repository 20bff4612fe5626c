"""The fault-injecting TCP proxy (tests/support/tcp_proxy.py) against a local echo server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
def echo() -> Iterator[int]:
    """An echo server on a free local port (one thread per connection)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    running = True

    def serve(conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def accept() -> None:
        while running:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    running = False
    thread.join()
    server.close()


def _connect(proxy: TcpProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    sock.settimeout(5)
    return sock


def _roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def _closed_by_peer(sock: socket.socket) -> bool:
    """True when the peer has closed the connection (a reset, or an end of stream)."""
    try:
        sock.sendall(b"anyone there?")
        return sock.recv(10) == b""
    except OSError:  # connection reset, broken pipe
        return True


def test_forwards_both_ways_and_counts(echo):
    with TcpProxy("127.0.0.1", echo) as proxy, _connect(proxy) as sock:
        assert _roundtrip(sock, b"hello") == b"hello"
        assert _roundtrip(sock, b"x" * 200_000) == b"x" * 200_000
        assert proxy.connections == 1
        # The proxy counts a chunk once its send returned, which may be just after the client
        # has read it: wait for the count to settle rather than read it at once.
        expected = 2 * (5 + 200_000)
        deadline = time.monotonic() + 5
        while proxy.bytes_forwarded < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proxy.bytes_forwarded == expected
        assert proxy.live == 1


def test_url_for_keeps_everything_but_the_address():
    proxy = TcpProxy("db.internal", 5432, listen_port=6543)
    assert proxy.url_for("postgresql://u:p%40w@db.internal:5432/phr?sslmode=disable") == \
        "postgresql://u:p%40w@127.0.0.1:6543/phr?sslmode=disable"
    assert proxy.url_for("redis://localhost:6379/0") == "redis://127.0.0.1:6543/0"


def test_cut_closes_live_connections_and_new_ones_work(echo):
    with TcpProxy("127.0.0.1", echo) as proxy:
        first, second = _connect(proxy), _connect(proxy)
        for sock in (first, second):
            assert _roundtrip(sock, b"ping") == b"ping"
        proxy.cut()
        for sock in (first, second):
            assert _closed_by_peer(sock)
            sock.close()
        assert proxy.live == 0
        with _connect(proxy) as third:
            assert _roundtrip(third, b"again") == b"again"


def test_refuse_then_restore_on_the_same_port(echo):
    with TcpProxy("127.0.0.1", echo) as proxy:
        port = proxy.port
        live = _connect(proxy)
        proxy.refuse()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
        assert _roundtrip(live, b"still up") == b"still up"  # refuse spares live connections
        live.close()
        proxy.restore()
        assert proxy.port == port
        with _connect(proxy) as sock:
            assert _roundtrip(sock, b"back") == b"back"


def test_blackhole_holds_bytes_until_restore(echo):
    with TcpProxy("127.0.0.1", echo) as proxy:
        old = _connect(proxy)
        assert _roundtrip(old, b"warm") == b"warm"
        proxy.blackhole()
        new = _connect(proxy)  # accepted: a hang, not a refusal
        for sock in (old, new):
            sock.settimeout(0.3)
            sock.sendall(b"lost?")
            with pytest.raises(TimeoutError):
                sock.recv(10)
        proxy.restore()
        for sock in (old, new):
            sock.settimeout(5)
            assert sock.recv(10) == b"lost?"
            sock.close()


def test_delay_adds_latency_to_each_chunk(echo):
    with TcpProxy("127.0.0.1", echo) as proxy, _connect(proxy) as sock:
        proxy.delay(0.2)
        started = time.monotonic()
        assert _roundtrip(sock, b"slow") == b"slow"
        assert time.monotonic() - started >= 0.4  # 0.2 s there, 0.2 s back
        proxy.restore()
        assert _roundtrip(sock, b"fast") == b"fast"


def test_an_orderly_close_travels_as_one(echo):
    with TcpProxy("127.0.0.1", echo) as proxy:
        sock = _connect(proxy)
        sock.sendall(b"bye")
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(10) == b"bye"
        assert sock.recv(10) == b""  # the echo server saw our FIN and closed in turn
        sock.close()
        deadline = time.monotonic() + 5
        while proxy.live and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proxy.live == 0


def test_stop_closes_everything(echo):
    proxy = TcpProxy("127.0.0.1", echo).start()
    sock = _connect(proxy)
    proxy.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    assert _closed_by_peer(sock)
    sock.close()
