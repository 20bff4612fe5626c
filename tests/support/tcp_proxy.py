"""A TCP proxy the tests put between the app and a service (PostgreSQL, Redis, the broker, a
provider) to inject network faults into real connections, with no patching of the client.

    with TcpProxy("127.0.0.1", 5432) as proxy:
        app = make_app(proxy.url_for("postgresql://postgres@127.0.0.1:5432/db"), ...)
        proxy.cut()          # every live connection closed at once, both sides (RST)
        proxy.refuse()       # nothing listens: a new connection gets ECONNREFUSED
        proxy.blackhole()    # connections are accepted (and live ones kept) but no byte moves
        proxy.delay(0.5)     # every forwarded chunk waits half a second first
        proxy.restore()      # normal forwarding again, listening again on the same port

The faults compose as an outage does: `refuse()` alone leaves live connections working (a
pool keeps using them), so "the database went away" is `cut()` then `refuse()`. `blackhole()`
holds every connection, old and new, without forwarding or closing anything (a partition or
a hung server: what timeouts are for); `restore()` lets the held bytes through.

One thread accepts, two threads per connection pump bytes (one each way). `connections`
counts accepted client connections, `bytes_forwarded` the bytes delivered in both directions;
`live` is the number of connections currently open. Everything is local: the proxy listens on
127.0.0.1 (a free port unless one is given) and `stop()` closes every socket it opened.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from urllib.parse import urlsplit, urlunsplit

_CHUNK = 65536
_POLL = 0.05  # how often a waiting thread looks at the mode again


def _reset(sock: socket.socket) -> None:
    """Close abruptly: wake a thread blocked in recv (SHUT_RD), then close with SO_LINGER 0,
    which sends the peer an RST instead of an orderly FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self.closed = threading.Event()
        self.halves_done = 0  # directions that ended with an orderly end of stream
        self._lock = threading.Lock()

    def close(self, *, abrupt: bool = True) -> None:
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
            for sock in (self.client, self.upstream):
                if sock is None:
                    continue
                if abrupt:
                    _reset(sock)
                else:
                    with contextlib.suppress(OSError):
                        sock.close()


class TcpProxy:
    """A fault-injecting TCP proxy to `target_host:target_port`; a context manager."""

    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1",
                 listen_port: int = 0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self.port = listen_port
        self.bytes_forwarded = 0
        self.connections = 0
        self._delay = 0.0
        self._flowing = threading.Event()  # cleared while blackholed
        self._flowing.set()
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._stopped = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._stopped.clear()
        self._listen()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._flowing.set()
        self._unlisten()
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- faults ---------------------------------------------------------------------------

    def cut(self) -> None:
        """Close every live connection at once, both sides, with an RST."""
        with self._lock:
            links = list(self._links)
            self._links.clear()
        for link in links:
            link.close()

    def refuse(self) -> None:
        """Stop listening: a new connection is refused. Live connections are left alone."""
        self._unlisten()

    def blackhole(self) -> None:
        """Accept new connections, keep every connection open, forward nothing."""
        self._flowing.clear()
        if self._listener is None and not self._stopped.is_set():
            self._listen()

    def delay(self, seconds: float) -> None:
        """Wait `seconds` before forwarding each chunk, in both directions."""
        self._delay = max(0.0, float(seconds))

    def restore(self) -> None:
        """Normal forwarding, no delay, listening again (on the same port)."""
        self._delay = 0.0
        self._flowing.set()
        if self._listener is None and not self._stopped.is_set():
            self._listen()

    # -- helpers for tests ----------------------------------------------------------------

    @property
    def live(self) -> int:
        with self._lock:
            return len(self._links)

    def url_for(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's (credentials, path and query
        kept): `postgresql://u:p@db:5432/x` -> `postgresql://u:p@127.0.0.1:<port>/x`."""
        parts = urlsplit(url)
        credentials, at, _ = parts.netloc.rpartition("@")
        netloc = f"{credentials}{at}{self.listen_host}:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    # -- internals ------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.listen_host, self.port))
        listener.listen(128)
        listener.settimeout(_POLL)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,),
                                          name=f"tcp-proxy-{self.port}", daemon=True)
        self._acceptor.start()

    def _unlisten(self) -> None:
        listener, acceptor = self._listener, self._acceptor
        self._listener = self._acceptor = None
        if acceptor is not None and acceptor is not threading.current_thread():
            acceptor.join(timeout=5)
        if listener is None:
            return
        # Connections the kernel completed but nobody accepted yet are live for their clients:
        # adopt them rather than let the close reset them.
        listener.setblocking(False)
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                break
            self._adopt(client)
        with contextlib.suppress(OSError):
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._adopt(client)

    def _adopt(self, client: socket.socket) -> None:
        client.setblocking(True)
        link = _Link(client)
        with self._lock:
            self.connections += 1
            self._links.add(link)
        threading.Thread(target=self._connect, args=(link,), daemon=True).start()

    def _connect(self, link: _Link) -> None:
        # A blackholed proxy holds a new connection before reaching the service at all.
        while not self._flowing.wait(_POLL):
            if link.closed.is_set():
                return
        try:
            upstream = socket.create_connection((self.target_host, self.target_port),
                                                timeout=10)
        except OSError:
            self._drop(link)
            return
        upstream.settimeout(None)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with link._lock:  # noqa: SLF001 - the link's own lock, shared with close()
            if link.closed.is_set():
                _reset(upstream)
                return
            link.upstream = upstream
        threading.Thread(target=self._pump, args=(link, link.client, upstream),
                         daemon=True).start()
        self._pump(link, upstream, link.client)

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket) -> None:
        while not link.closed.is_set():
            try:
                chunk = source.recv(_CHUNK)
            except OSError:
                break
            if not chunk:
                # An orderly end of stream travels on as one (FIN); the link goes when both
                # directions have ended.
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                with link._lock:  # noqa: SLF001
                    link.halves_done += 1
                    finished = link.halves_done == 2
                if finished:
                    self._drop(link, abrupt=False)
                return
            while not self._flowing.wait(_POLL):
                if link.closed.is_set():
                    return
            if self._delay:
                time.sleep(self._delay)
            if link.closed.is_set():
                return
            try:
                sink.sendall(chunk)
            except OSError:
                break
            with self._lock:
                self.bytes_forwarded += len(chunk)
        self._drop(link)

    def _drop(self, link: _Link, *, abrupt: bool = True) -> None:
        with self._lock:
            self._links.discard(link)
        link.close(abrupt=abrupt)
