"""A small threaded TCP echo server on 127.0.0.1, and client helpers for the fault tests."""

from __future__ import annotations

import socket
import socketserver
import statistics
import threading
import time
from types import TracebackType


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while data := sock.recv(65536):
                sock.sendall(data)
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class EchoServer:
    """``with EchoServer() as echo:`` echoes every byte back; ``echo.address`` is host:port."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self.port = int(self._server.server_address[1])
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> EchoServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def connect(address: str, timeout: float = 5.0) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(65536, n - got))
        if not chunk:
            raise ConnectionError(f"connection closed after {got} of {n} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Seconds to send ``payload`` and read it back."""
    start = time.perf_counter()
    sock.sendall(payload)
    if recv_exactly(sock, len(payload)) != payload:
        raise AssertionError("echo returned different bytes")
    return time.perf_counter() - start


def median_rtt(address: str, samples: int = 5) -> float:
    """Median round trip of a small message over one fresh connection, in seconds."""
    with connect(address) as sock:
        round_trip(sock)  # warm up: connect to upstream, first toxic pass
        return statistics.median(round_trip(sock) for _ in range(samples))


def transfer_time(address: str, size: int) -> float:
    """Seconds to echo ``size`` bytes through ``address`` (sent and received concurrently)."""
    payload = bytes(range(256)) * (size // 256)
    with connect(address, timeout=60) as sock:
        start = time.perf_counter()
        sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
        sender.start()
        got = recv_exactly(sock, len(payload))
        sender.join()
        elapsed = time.perf_counter() - start
    if got != payload:
        raise AssertionError("echo returned different bytes")
    return elapsed


def refuses(address: str) -> bool:
    """True if nothing listens on ``address`` right now.

    A connection to a free port of the ephemeral range on loopback can, rarely, connect to
    itself (TCP simultaneous open: the kernel picked the same port as the source port); such a
    connection proves no listener, so it counts as refused.
    """
    try:
        with connect(address, timeout=2) as sock:
            return bool(sock.getsockname() == sock.getpeername())
    except ConnectionRefusedError:
        return True
