"""Helpers of the network-namespace tests: skip without privileges, a client inside a
namespace, servers on the host side, the leak check."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

from bench.netns import NodeNamespace, leftovers, unavailable_reason
from bench.netns.reaper import deadman_processes

CLIENT = Path(__file__).with_name("ns_client.py")


def require_netns() -> None:
    """Skip with the reason when namespaces cannot be made here; fail instead under CI=true."""
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true, so this is an error: {reason}", pytrace=False)
    pytest.skip(reason)


def assert_clean(cluster: str, link_names: tuple[str, ...] = ()) -> None:
    """Nothing of ``cluster`` (namespaces, links, state) nor the links' dead-man timers."""
    __tracebackhide__ = True
    left = leftovers(cluster)
    left += [p for p in deadman_processes() if any(f":{n})" in p for n in link_names)]
    assert not left, f"edgebench left behind: {left}"


class Inside:
    """``tests/ns_client.py`` running inside a namespace, driven line by line."""

    def __init__(self, ns: NodeNamespace) -> None:
        self.proc = subprocess.Popen(
            ns.exec_argv([sys.executable, str(CLIENT)], hostname=False),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def start(self, command: str) -> None:
        """Send a command whose answer comes later (:meth:`answer`), after ``listening``."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "listening"

    def answer(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


class EchoServer:
    """A TCP server echoing lines, on ``host:0``; ``peers`` sees how connections ended."""

    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.address = self.sock.getsockname()
        self.ends: list[str] = []
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.address[1])

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.2)
            while not self._stop:
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError as e:
                    self.ends.append(type(e).__name__)
                    return
                if not data:
                    self.ends.append("eof")
                    return
                conn.sendall(data)

    def close(self) -> None:
        self._stop = True
        self.sock.close()


class Sink:
    """A TCP server counting the bytes of one connection, timed from its first byte."""

    def __init__(self, host: str, seconds: float) -> None:
        self.sock = socket.create_server((host, 0))
        self.port = int(self.sock.getsockname()[1])
        self.seconds = seconds
        self.got = 0
        self.took = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.sock.settimeout(10)
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(1)
            self.got = len(conn.recv(65536))
            start = time.monotonic()
            while time.monotonic() - start < self.seconds:
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                self.got += len(data)
            self.took = time.monotonic() - start
        self.sock.close()


def udp_count(host: str, port_out: list[int], seconds: float) -> threading.Thread:
    """Start counting datagrams on ``host`` (its port put in ``port_out``); count appended."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((host, 0))
    port_out.append(int(sock.getsockname()[1]))

    def run() -> None:
        with sock:
            sock.settimeout(0.2)
            count, end = 0, time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    sock.recv(2048)
                    count += 1
                except TimeoutError:
                    pass
            port_out.append(count)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
