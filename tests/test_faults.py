"""Integration tests of bench.faults against the real toxiproxy-server and a loopback echo."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from echo import EchoServer, connect, median_rtt, refuses, round_trip, transfer_time

from bench.errors import FaultError, NotSupportedError
from bench.faults import TOXIC_TYPES, FaultKind, Toxiproxy, ToxiproxyLink
from bench.faults.base import CutMode, Link
from bench.faults.composite import CompositeLink

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
MakeLink = Callable[..., ToxiproxyLink]


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture
def link(make_link: MakeLink, echo: EchoServer) -> ToxiproxyLink:
    return make_link(echo.address)


def toxics_of(tp: Toxiproxy, link: ToxiproxyLink) -> list[str]:
    return sorted(
        t["name"] for p in link.proxies for t in tp._api.call("GET", f"/proxies/{p.name}/toxics")
    )


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (read from /proc, no psutil)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


# --- server lifecycle -----------------------------------------------------------------------


def test_server_api_is_on_loopback(toxiproxy: Toxiproxy) -> None:
    assert toxiproxy.version() == "v2.12.0"
    assert toxiproxy.url.startswith("http://127.0.0.1:")
    listeners = Path("/proc/net/tcp").read_text() + Path("/proc/net/tcp6").read_text()
    port_hex = f":{toxiproxy.port:04X} "
    local = [line.split()[1] for line in listeners.splitlines()[1:] if port_hex in line]
    assert local, f"API port {toxiproxy.port} not found in /proc/net/tcp*"
    assert all(addr.startswith("0100007F:") for addr in local), local  # 127.0.0.1 only


def test_start_and_stop_leave_nothing(toxiproxy_server_path: Path) -> None:
    with Toxiproxy.start(binary=toxiproxy_server_path) as tp:
        pid, port, log_dir = tp.pid, tp.port, tp.log_path.parent
        assert pid_alive(pid)
        assert tp.log_path.is_file()
    assert not pid_alive(pid)
    assert refuses(f"127.0.0.1:{port}")
    assert not log_dir.exists()


def test_keyboard_interrupt_stops_server(toxiproxy_server_path: Path, tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), Toxiproxy.start(toxiproxy_server_path, tmp_path) as tp:
        pid = tp.pid
        raise KeyboardInterrupt
    assert not pid_alive(pid)
    assert (tmp_path / "toxiproxy-server.log").is_file()  # a caller-given log dir is kept


def test_server_dying_at_startup_names_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "toxiproxy-server"
    fake.write_text("#!/bin/sh\necho 'listen tcp: address already taken by a test' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(FaultError, match=r"exited with status 3.*toxiproxy-server\.log") as err:
        Toxiproxy.start(binary=fake, log_dir=tmp_path / "logs")
    assert "address already taken by a test" in str(err.value)


def test_api_errors_after_server_stopped_name_the_log(
    toxiproxy_server_path: Path, echo: EchoServer
) -> None:
    tp = Toxiproxy.start(binary=toxiproxy_server_path)
    link = tp.link("orphan", echo.address)
    tp.stop()
    with pytest.raises(FaultError, match="server log"):
        link.cut().apply()


# --- links and faults -----------------------------------------------------------------------


def test_link_proxies_traffic_on_a_resolved_port(link: ToxiproxyLink, echo: EchoServer) -> None:
    assert link.upstream == echo.address
    assert not link.listen.endswith(":0")
    with connect(link.listen) as sock:
        round_trip(sock, b"hello")


@pytest.mark.parametrize(("direction", "legs"), [("both", 2), ("upstream", 1), ("downstream", 1)])
def test_latency_adds_to_round_trip(link: ToxiproxyLink, direction: str, legs: int) -> None:
    baseline = median_rtt(link.listen)
    with link.latency(60, direction=direction):  # type: ignore[arg-type]
        delayed = median_rtt(link.listen, samples=3)
    expected = legs * 0.060
    assert expected * 0.9 <= delayed - baseline <= expected + 0.2, (baseline, delayed)
    assert median_rtt(link.listen) < baseline + 0.03


def test_reset_cut_refuses_new_and_closes_open_connections(link: ToxiproxyLink) -> None:
    with connect(link.listen) as open_sock:
        round_trip(open_sock)
        with link.cut(mode="reset") as fault:
            assert refuses(link.listen)
            open_sock.settimeout(2)
            with pytest.raises((ConnectionError, OSError)):
                open_sock.sendall(b"x")
                if not open_sock.recv(1):
                    raise ConnectionError("closed by the cut")
    assert fault.started_mono is not None and fault.ended_mono is not None
    assert fault.started_at is not None and fault.ended_at is not None
    assert fault.ended_mono >= fault.started_mono
    assert fault.label == "cut/reset via toxiproxy"
    with connect(link.listen) as sock:  # same port again after the cut
        round_trip(sock)


def test_blackhole_cut_keeps_connections_open_and_silent(link: ToxiproxyLink) -> None:
    with connect(link.listen) as open_sock:
        round_trip(open_sock)
        with link.cut(mode="blackhole") as fault:
            open_sock.settimeout(1.0)
            open_sock.sendall(b"ping")
            with pytest.raises(TimeoutError):  # silent: no answer, and not closed either
                open_sock.recv(4)
            # Toxiproxy still completes a new connection's handshake; then it hangs too.
            with connect(link.listen, timeout=1.0) as new_sock:
                new_sock.sendall(b"ping")
                with pytest.raises(TimeoutError):
                    new_sock.recv(4)
            assert not refuses(link.listen)
    assert fault.label == "cut/blackhole via toxiproxy"
    with connect(link.listen) as sock:  # new connections work again after the restore
        round_trip(sock)


def test_unsupported_fault_is_refused_before_anything_is_applied(
    toxiproxy: Toxiproxy, link: ToxiproxyLink
) -> None:
    with pytest.raises(NotSupportedError, match=r"toxiproxy link backend cannot do loss"):
        link.loss(20)
    assert not link.supports(FaultKind.LOSS) and link.supports(FaultKind.CUT_BLACKHOLE)
    assert toxics_of(toxiproxy, link) == []
    with pytest.raises(FaultError, match="unknown cut mode 'pulled'"):
        link.cut(mode="pulled")  # type: ignore[arg-type]


def test_cuts_of_different_modes_do_not_nest(link: ToxiproxyLink) -> None:
    with link.cut(mode="reset"), pytest.raises(FaultError, match="already cut in mode reset"):
        link.cut(mode="blackhole").apply()
    with connect(link.listen) as sock:
        round_trip(sock)


def test_listeners_hear_each_fault_applied_and_removed(link: ToxiproxyLink) -> None:
    heard: list[tuple[str, bool]] = []
    link.listeners.append(lambda f: heard.append((f.label, f.ended_mono is not None)))
    with link.cut(mode="blackhole"):
        pass
    with link.latency(10):
        pass
    assert heard == [
        ("cut/blackhole via toxiproxy", False),
        ("cut/blackhole via toxiproxy", True),
        ("latency via toxiproxy", False),
        ("latency via toxiproxy", True),
    ]


@pytest.mark.parametrize("direction", ["upstream", "downstream"])
def test_bandwidth_caps_throughput(link: ToxiproxyLink, echo: EchoServer, direction: str) -> None:
    size, kbps = 250_000, 250
    assert transfer_time(echo.address, size) < 0.5
    with link.bandwidth(kbps, direction=direction):  # type: ignore[arg-type]
        elapsed = transfer_time(link.listen, size)
    expected = size / (kbps * 1000)
    assert expected * 0.5 <= elapsed <= expected * 3, (expected, elapsed)
    assert transfer_time(link.listen, size) < 0.5


def test_restore_brings_the_baseline_back(toxiproxy: Toxiproxy, link: ToxiproxyLink) -> None:
    baseline = median_rtt(link.listen)
    latency, cut = link.latency(100).apply(), link.cut(mode="reset").apply()
    assert refuses(link.listen)
    link.restore()
    assert toxics_of(toxiproxy, link) == []
    assert median_rtt(link.listen) < baseline + 0.03
    latency.remove()  # removing after a restore is harmless
    cut.remove()
    assert not refuses(link.listen)


def test_faults_nest(toxiproxy: Toxiproxy, link: ToxiproxyLink) -> None:
    with link.bandwidth(1000):
        with link.latency(10, direction="downstream"):
            assert len(toxics_of(toxiproxy, link)) == 3
        assert [t.split("_")[0] for t in toxics_of(toxiproxy, link)] == ["bandwidth"] * 2
        with link.cut(mode="reset"):
            with link.cut(mode="reset"):
                pass
            assert refuses(link.listen)  # the outer cut still holds
        assert not refuses(link.listen)
    assert toxics_of(toxiproxy, link) == []


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_faults_are_undone_on_errors_and_ctrl_c(
    toxiproxy: Toxiproxy, link: ToxiproxyLink, error: type[BaseException]
) -> None:
    with pytest.raises(error), link.cut(mode="reset"), link.latency(500):
        raise error
    assert toxics_of(toxiproxy, link) == []
    assert median_rtt(link.listen) < 0.2


def test_timeout_is_a_black_hole(link: ToxiproxyLink) -> None:
    with link.timeout(0), connect(link.listen, timeout=0.5) as sock:
        sock.sendall(b"hello")
        with pytest.raises(TimeoutError):
            sock.recv(5)
    with connect(link.listen) as sock:
        round_trip(sock)


def test_reset_peer_resets_connections(link: ToxiproxyLink) -> None:
    with (
        link.reset_peer(),
        connect(link.listen, timeout=2) as sock,
        pytest.raises((ConnectionError, OSError)),
    ):
        sock.sendall(b"hello")
        if not sock.recv(5):
            raise ConnectionError("closed")


def test_slicer_keeps_data_intact(link: ToxiproxyLink) -> None:
    with link.slicer(average_size=64, size_variation=32, delay_us=50):
        assert transfer_time(link.listen, 32_768) < 10


def test_generic_toxic(toxiproxy: Toxiproxy, link: ToxiproxyLink) -> None:
    with link.toxic("slow_close", direction="downstream", delay=100):
        assert toxics_of(toxiproxy, link) == ["slow_close_downstream_1"]


def test_flap_alternates_and_ends_restored(link: ToxiproxyLink) -> None:
    states: list[bool] = []
    with link.flap(up_s=0.4, down_s=0.4, cycles=2, mode="reset") as flap:
        deadline = time.monotonic() + 1.9
        while time.monotonic() < deadline:
            states.append(refuses(link.listen))
            time.sleep(0.05)
    changes = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    assert changes[:4] == [True, False, True, False], states
    assert [t[2] for t in flap.transitions] == ["down", "up", "down", "up"]
    assert not refuses(link.listen)


def test_flap_exit_while_down_leaves_link_up(link: ToxiproxyLink) -> None:
    with link.flap(up_s=5, down_s=5, mode="reset"):
        assert wait_until(lambda: refuses(link.listen), 2)
    assert not refuses(link.listen)


def test_link_with_two_proxies(make_link: MakeLink, echo: EchoServer) -> None:
    with EchoServer() as other:
        link = make_link([echo.address, other.address])
        assert link.listen_for(other.address) != link.listen
        with link.cut(mode="reset"):
            assert refuses(link.listen) and refuses(link.listen_for(other.address))
        with link.latency(50, direction="upstream"):
            assert median_rtt(link.listen_for(other.address), samples=2) >= 0.045
        extra = link.add(echo.address)
        with connect(extra) as sock:
            round_trip(sock)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("upstream", ["nope", "host:", ":80", "h:99999", "h:0", "a b:1", 6443])
def test_bad_upstream_format(make_link: MakeLink, upstream: object) -> None:
    with pytest.raises(FaultError, match=r"bad upstream .*expected 'host:port'"):
        make_link(upstream)


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_upstream_nobody_listens_on(make_link: MakeLink, caplog: pytest.LogCaptureFixture) -> None:
    upstream = closed_port()
    with caplog.at_level(logging.WARNING, logger="bench.faults"):
        link = make_link(upstream)
    assert "not reachable now" in caplog.text and "closes each at once" in caplog.text
    with connect(link.listen, timeout=2) as sock:  # accepted by the proxy, then closed
        sock.sendall(b"x")
        with pytest.raises((ConnectionError, OSError)):
            if not sock.recv(1):
                raise ConnectionError("closed")
    with pytest.raises(FaultError, match=f"upstream {upstream} is not reachable"):
        make_link(upstream, check_upstream=True)


def test_unknown_toxic_lists_valid_types(link: ToxiproxyLink) -> None:
    with pytest.raises(FaultError, match="unknown toxic type 'packet_loss'") as err:
        link.toxic("packet_loss", percent=5)
    assert all(t in str(err.value) for t in TOXIC_TYPES)


def test_duplicate_link_name(make_link: MakeLink, echo: EchoServer, toxiproxy: Toxiproxy) -> None:
    make_link(echo.address, name="dup")
    with pytest.raises(FaultError, match="already exists"):
        make_link(echo.address, name="dup")
    toxiproxy._api.call("POST", "/proxies", {"name": "stray", "upstream": echo.address})
    try:
        with pytest.raises(FaultError, match="proxy named 'stray' already exists"):
            make_link(echo.address, name="stray")
    finally:
        toxiproxy._api.call("DELETE", "/proxies/stray")


@pytest.mark.parametrize(
    "make_fault",
    [
        lambda lk: lk.latency(-1),
        lambda lk: lk.latency(10, jitter_ms=-1),
        lambda lk: lk.latency(1.5),
        lambda lk: lk.bandwidth(-5),
        lambda lk: lk.bandwidth(0),
        lambda lk: lk.timeout(-1),
        lambda lk: lk.slicer(0),
        lambda lk: lk.reset_peer(-1),
        lambda lk: lk.flap(-1, 1),
        lambda lk: lk.flap(1, 1, cycles=0),
        lambda lk: lk.toxic("latency", latency=-1),
        lambda lk: lk.toxic("latency", toxicity=2),
        lambda lk: lk.latency(10, direction="sideways"),
    ],
)
def test_bad_values(link: ToxiproxyLink, make_fault: Callable[[ToxiproxyLink], object]) -> None:
    with pytest.raises(FaultError):
        make_fault(link)


# --- interrupted and killed runs leave nothing behind ---------------------------------------


# A child pytest outside this rootdir, loading only the fault fixtures.
PYTEST_CHILD = [
    *(sys.executable, "-m", "pytest", "-p", "no:edgebench", "-p", "bench.source_checkout"),
    *("-p", "edgebench_fixtures.faults", "-p", "no:cacheprovider"),
]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def wait_for_json(
    path: Path, proc: subprocess.Popen[bytes], timeout: float = 30
) -> dict[str, object]:
    if (
        not wait_until(lambda: path.exists() or proc.poll() is not None, timeout)
        or not path.exists()
    ):
        proc.kill()
        out = proc.communicate()[0].decode(errors="replace")
        pytest.fail(f"child did not report its toxiproxy (exit {proc.returncode}):\n{out}")
    return dict(json.loads(path.read_text()))


CHILD_TEST = """
import json, os, time
from pathlib import Path

def test_hold_a_fault(toxiproxy, make_link):
    link = make_link(os.environ["ECHO"])
    fault = link.cut(mode="reset") if os.environ["FAULT"] == "cut" else link.latency(100)
    with fault:
        info = {"pid": toxiproxy.pid, "api": toxiproxy.port, "listen": link.listen}
        Path(os.environ["INFO"] + ".tmp").write_text(json.dumps(info))
        os.rename(os.environ["INFO"] + ".tmp", os.environ["INFO"])
        time.sleep(60)
"""


@pytest.mark.parametrize(
    ("fault", "signum"),
    [("cut", signal.SIGINT), ("latency", signal.SIGINT), ("cut", signal.SIGTERM)],
)
def test_sigint_mid_fault_leaves_no_server_or_listener(
    tmp_path: Path, echo: EchoServer, toxiproxy_server_path: Path, fault: str, signum: int
) -> None:
    (tmp_path / "test_child.py").write_text(CHILD_TEST)
    info_path = tmp_path / "info.json"
    proc = subprocess.Popen(
        [*PYTEST_CHILD, "-q", "test_child.py"],
        cwd=tmp_path,
        env=child_env(ECHO=echo.address, FAULT=fault, INFO=str(info_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    info = wait_for_json(info_path, proc)
    pid, api, listen = int(str(info["pid"])), f"127.0.0.1:{info['api']}", str(info["listen"])
    assert pid_alive(pid)
    assert refuses(listen) == (fault == "cut")
    proc.send_signal(signum)
    out = proc.communicate(timeout=30)[0].decode(errors="replace")
    assert proc.returncode == 2, out  # pytest's "interrupted"
    assert "KeyboardInterrupt" in out
    assert not pid_alive(pid), f"toxiproxy-server {pid} survived SIGINT of pytest:\n{out}"
    assert refuses(api) and refuses(listen)


CHILD_SCRIPT = """
import json, os, sys, time
from bench.faults import Toxiproxy
tp = Toxiproxy.start(binary=sys.argv[1])
link = tp.link("killed", os.environ["ECHO"])
link.latency(100).apply()
print(json.dumps({"pid": tp.pid, "api": tp.port, "listen": link.listen, "log": str(tp.log_path)}))
sys.stdout.flush()
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_sigkill_of_parent_leaves_no_orphan(echo: EchoServer, toxiproxy_server_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", CHILD_SCRIPT, str(toxiproxy_server_path)],
        env=child_env(ECHO=echo.address),
        stdout=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline() or "{}")
        proc.kill()
        proc.wait(timeout=10)
    assert info, "child printed nothing"
    shutil.rmtree(Path(info["log"]).parent, ignore_errors=True)  # SIGKILL skips the cleanup
    assert wait_until(lambda: not pid_alive(info["pid"]), 5), "orphaned toxiproxy-server"
    # The kernel closes a killed process's sockets as its last thread exits: wait for it.
    assert wait_until(lambda: refuses(f"127.0.0.1:{info['api']}") and refuses(info["listen"]), 5)


CHILD_MISSING = """
def test_needs_toxiproxy(toxiproxy):
    pass
"""


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 error"), ("", "1 skipped")])
def test_missing_server_fails_in_ci_and_skips_elsewhere(
    tmp_path: Path, ci: str, outcome: str
) -> None:
    (tmp_path / "test_child.py").write_text(CHILD_MISSING)
    result = subprocess.run(
        [*PYTEST_CHILD, "-rsf", "test_child.py"],
        cwd=tmp_path,
        env=child_env(CI=ci, EDGEBENCH_HOME=str(tmp_path / "home")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert outcome in result.stdout, result.stdout + result.stderr
    assert "edgebench tools install toxiproxy" in result.stdout


class _Part(Link):
    """A backend that only counts its ``reinstall`` calls and says whether it had faults."""

    def __init__(self, name: str, had_faults: bool) -> None:
        super().__init__(name)
        self.had_faults = had_faults
        self.reinstalled = 0

    def capabilities(self) -> frozenset[FaultKind]:
        return frozenset()

    def restore(self) -> None:
        pass

    def reinstall(self) -> bool:
        self.reinstalled += 1
        return self.had_faults

    def _set_down(self, mode: CutMode, down: bool) -> None:
        pass


@pytest.mark.parametrize(("first", "second"), [(True, False), (False, True), (False, False)])
def test_a_composite_link_reinstalls_every_part(first: bool, second: bool) -> None:
    parts = [_Part("kernel", first), _Part("toxiproxy", second)]
    assert CompositeLink("edge-0", parts).reinstall() is (first or second)
    assert [p.reinstalled for p in parts] == [1, 1]  # each asked, even after a True
