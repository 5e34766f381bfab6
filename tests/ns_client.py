"""A line-driven socket client the network-namespace tests run inside a node's namespace.

    ip netns exec NS python tests/ns_client.py

Reads one command per line on stdin and answers one line on stdout:

    connect HOST PORT TIMEOUT   -> ok | error NAME
    send TEXT                   -> ok | error NAME
    recv TIMEOUT                -> data TEXT | timeout | closed | error NAME
    udp HOST PORT N GAP         -> ok DROPPED    (N datagrams, GAP apart; DROPPED got EPERM)
    udpcount PORT SECONDS       -> count N       (datagrams received on PORT for SECONDS)
    bulk HOST PORT SECONDS      -> sent BYTES    (send as fast as possible for SECONDS)
    sink PORT SECONDS           -> got BYTES SECONDS (bytes from one connection, timed)
"""

from __future__ import annotations

import socket
import sys
import time


def main() -> None:
    conn: socket.socket | None = None
    for line in sys.stdin:
        cmd, *args = line.split()
        try:
            if cmd == "connect":
                conn = socket.create_connection((args[0], int(args[1])), timeout=float(args[2]))
                answer = "ok"
            elif cmd == "send":
                assert conn is not None
                conn.sendall(args[0].encode() + b"\n")
                answer = "ok"
            elif cmd == "recv":
                assert conn is not None
                conn.settimeout(float(args[0]))
                data = conn.recv(4096)
                answer = f"data {data.decode().strip()}" if data else "closed"
            elif cmd == "udp":
                refused = 0
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    for i in range(int(args[2])):
                        try:
                            s.sendto(str(i).encode(), (args[0], int(args[1])))
                        except PermissionError:  # dropped by iptables in OUTPUT: EPERM
                            refused += 1
                        time.sleep(float(args[3]))
                answer = f"ok {refused}"
            elif cmd == "udpcount":
                answer = f"count {udp_count(int(args[0]), float(args[1]))}"
            elif cmd == "bulk":
                answer = f"sent {bulk(args[0], int(args[1]), float(args[2]))}"
            elif cmd == "sink":
                got, took = sink(int(args[0]), float(args[1]))
                answer = f"got {got} {took:.3f}"
            else:
                answer = f"error unknown command {cmd}"
        except TimeoutError:
            answer = "timeout"
        except OSError as e:
            answer = f"error {type(e).__name__}"
        print(answer, flush=True)


def udp_count(port: int, seconds: float) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind(("0.0.0.0", port))
        print("listening", flush=True)
        s.settimeout(0.2)
        count, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                s.recv(2048)
                count += 1
            except TimeoutError:
                pass
        return count


def bulk(host: str, port: int, seconds: float) -> int:
    chunk = b"x" * 16384
    sent = 0
    with socket.create_connection((host, port), timeout=5) as s:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sent += s.send(chunk)
    return sent


def sink(port: int, seconds: float) -> tuple[int, float]:
    with socket.create_server(("0.0.0.0", port)) as server:
        print("listening", flush=True)
        server.settimeout(10)
        conn, _ = server.accept()
        with conn:
            conn.settimeout(1)
            got = len(conn.recv(65536))
            start = time.monotonic()
            while time.monotonic() - start < seconds:
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                got += len(data)
            return got, time.monotonic() - start


if __name__ == "__main__":
    main()
