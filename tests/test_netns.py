"""Node namespaces, for real: veth, addresses, isolation, hostname, removal, the reaper."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns_support import EchoServer, Inside, assert_clean, require_netns

from bench.errors import ClusterError, UsageError
from bench.netns import NETWORK, NodeNamespace, all_specs, cleanup_orphans, leftovers
from bench.netns.names import state_dir

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A cluster name unique to this test, state under a private EDGEBENCH_HOME; checked clean."""
    require_netns()
    monkeypatch.setenv("EDGEBENCH_HOME", str(tmp_path / "home"))
    name = f"t{os.getpid()}-{os.urandom(3).hex()}"
    yield name
    assert_clean(name)


def test_layout_addresses_and_state(cluster: str) -> None:
    with NodeNamespace.create(cluster, "edge-1") as a, NodeNamespace.create(cluster, "edge-2") as b:
        for ns in (a, b):
            assert len(ns.veth_host) <= 15 and len(ns.veth_node) <= 15
            assert ns.name.startswith("eb-") and ns.veth_host.startswith("ebh")
            assert {ns.host_addr, ns.node_addr} <= set(map(str, NETWORK))
            addrs = ns.run(["ip", "-4", "-o", "addr", "show", "dev", ns.veth_node]).out
            assert f"{ns.node_addr}/30" in addrs
            host = subprocess.run(
                ["ip", "-4", "-o", "addr", "show", "dev", ns.veth_host],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            assert f"{ns.host_addr}/30" in host
            assert "default via " + ns.host_addr in ns.run(["ip", "route"]).out
            # IPv6 is off inside: no link-local path to the host
            assert "inet6" not in ns.run(["ip", "addr"]).out
        assert a.host_addr != b.host_addr and a.name != b.name
        assert {s.node for s in all_specs() if s.cluster == cluster} == {"edge-1", "edge-2"}
        with pytest.raises(ClusterError, match="already has namespace"):
            NodeNamespace.create(cluster, "edge-1")
        assert NodeNamespace.find(cluster, "edge-2").name == b.name
        with pytest.raises(UsageError, match="its nodes: edge-1, edge-2"):
            NodeNamespace.find(cluster, "edge-3")
        with pytest.raises(UsageError, match=f"clusters with namespaces: {cluster}"):
            NodeNamespace.find("nope", "edge-1")


def test_process_inside_has_own_hostname_and_keeps_its_pid(cluster: str) -> None:
    with NodeNamespace.create(cluster, "edge_7.x") as ns:
        argv = ns.exec_argv(["sh", "-c", 'echo "$$ $(hostname)"; ip -4 -o addr show'])
        proc = subprocess.run(argv, capture_output=True, text=True, check=True)
        first, rest = proc.stdout.split("\n", 1)
        assert first.split()[1] == "edge-7-x"  # the node name made a valid hostname
        assert ns.node_addr in rest and "192." not in rest  # the host's NICs are not there
        popen = subprocess.Popen(ns.exec_argv(["sh", "-c", "echo $$"]), stdout=subprocess.PIPE)
        out, _ = popen.communicate()
        assert int(out) == popen.pid  # ip netns exec, unshare and sh all exec
        assert socket.gethostname() != "edge-7-x"  # the host's hostname is untouched


def test_only_the_host_side_is_reachable_from_inside(cluster: str) -> None:
    with (
        NodeNamespace.create(cluster, "edge-1") as a,
        NodeNamespace.create(cluster, "edge-2", allow_ports=[]) as b,
    ):
        # one server on every host address: reachable only through a's host side
        anywhere = EchoServer("0.0.0.0")
        loopback = EchoServer("127.0.0.1")
        try:
            with Inside(a) as inside:
                assert inside.ask(f"connect {a.host_addr} {anywhere.port} 2") == "ok"
                assert inside.ask("send hi") == "ok"
                assert inside.ask("recv 2") == "data hi"
                # the host's loopback: 127.0.0.1 inside is the namespace's own
                assert inside.ask(f"connect 127.0.0.1 {loopback.port} 2").startswith("error")
                # another node's host side and the other node itself: rejected by the guard
                for other in (b.host_addr, b.node_addr):
                    answer = inside.ask(f"connect {other} {anywhere.port} 2")
                    assert answer.startswith("error"), (other, answer)
            with Inside(b) as inside:  # allow_ports=[]: not even its own host side's ports
                answer = inside.ask(f"connect {b.host_addr} {anywhere.port} 2")
                assert answer == "error ConnectionRefusedError"
                b.allow_ports([anywhere.port])  # now that port, and only that one
                assert inside.ask(f"connect {b.host_addr} {anywhere.port} 2") == "ok"
                second = EchoServer("0.0.0.0")  # listening on the host side too, not allowed
                try:
                    answer = inside.ask(f"connect {b.host_addr} {second.port} 2")
                    assert answer == "error ConnectionRefusedError"
                finally:
                    second.close()
        finally:
            anywhere.close()
            loopback.close()


def test_remove_is_idempotent_and_kills_what_runs_inside(cluster: str) -> None:
    ns = NodeNamespace.create(cluster, "edge-1")
    sleeper = subprocess.Popen(ns.exec_argv(["sleep", "600"]))
    assert ns.exists()
    ns.remove()
    assert sleeper.wait(timeout=10) == -signal.SIGKILL
    assert not ns.exists() and leftovers(cluster) == []
    ns.remove()  # again: nothing to do, no error
    assert not state_dir().joinpath(f"{ns.name}.json").exists()


def test_orphans_of_a_killed_owner_are_reaped(cluster: str, tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys, time
        from bench.netns import NodeNamespace
        ns = NodeNamespace.create({cluster!r}, "edge-9")
        print(ns.name, flush=True)
        time.sleep(600)
        """
    )
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    owner = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    assert owner.stdout is not None
    name = owner.stdout.readline().strip()
    owner.stdout.close()
    with NodeNamespace.create(cluster, "edge-1") as mine:  # owned by this (live) process
        assert (
            name
            and name
            in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        )
        assert cleanup_orphans() == []  # the owner is alive: nothing is an orphan
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert cleanup_orphans() == [name]
        assert mine.exists()
    assert leftovers(cluster) == []


def test_check_clean_cli_lists_a_leftover(cluster: str) -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "bench.netns", "--check-clean"]
    with NodeNamespace.create(cluster, "edge-1") as ns:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env)
        assert proc.returncode == 1
        assert f"namespace {ns.name}" in proc.stderr and f"link {ns.veth_host}" in proc.stderr
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert ns.name not in proc.stderr


# Run in a private network, mount and pid namespace: its own (empty) filter tables, no
# namespaces in /run/netns and no other processes, so --check-clean can come out clean here
# while other sessions run on this machine, and nothing of theirs is seen or touched.
_CHAINS_INSIDE = textwrap.dedent(
    """
    import json, os, subprocess, sys
    if os.path.isdir("/run/netns"):
        subprocess.run(["mount", "-t", "tmpfs", "eb-test", "/run/netns"], check=True)
    def iptables(*args):
        subprocess.run(["iptables", "-w", "-t", "filter", *args], check=True)
    def cli(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "bench.netns", *args], capture_output=True, text=True
        )
        return [proc.returncode, proc.stdout, proc.stderr]
    dead, live = sys.argv[1], f"EBT-{os.getpid()}-0"
    for chain in (dead, live):
        iptables("-N", chain)
        iptables("-I", "OUTPUT", "1", "-j", chain)
    seen = {"live": live, "before": cli("--check-clean"), "reaped": cli("--cleanup-orphans")}
    seen["between"] = cli("--check-clean")
    iptables("-D", "OUTPUT", "-j", live)
    iptables("-X", live)
    seen["after"] = cli("--check-clean")
    print(json.dumps(seen))
    """
)


def test_check_clean_lists_traffic_counter_chains_and_the_reaper_removes_orphans(
    tmp_path: Path,
) -> None:
    """``EBT-<pid>-<n>`` chains (bench.observe.traffic) are leftovers; --cleanup-orphans
    removes those of a dead owner, as the next LinkCounters would, and keeps a live one's."""
    import json
    import shutil

    from bench.procs import pid_alive

    require_netns()
    if shutil.which("unshare") is None or shutil.which("iptables") is None:
        pytest.skip("needs unshare and iptables")
    dead = f"EBT-{next(p for p in range(4_000_000, 4_100_000) if not pid_alive(p))}-0"
    argv = ["unshare", "--net", "--pid", "--fork", "--mount-proc"]
    env = os.environ | {"PYTHONPATH": str(ROOT), "EDGEBENCH_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [*argv, sys.executable, "-c", _CHAINS_INSIDE, dead],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    live = seen["live"]
    code, _, err = seen["before"]
    assert code == 1
    assert f"chain {dead} (host; traffic counters of pid" in err and "gone" in err
    assert f"chain {live} (host; traffic counters of pid" in err and "alive" in err
    assert seen["reaped"][0] == 0 and f"chain {dead} (host)" in seen["reaped"][1]
    code, _, err = seen["between"]
    assert code == 1 and dead not in err and live in err
    assert seen["after"] == [0, "", ""]


def test_without_privileges_the_reason_says_what_to_do() -> None:
    require_netns()
    code = "from bench.netns import unavailable_reason; print(unavailable_reason())"
    proc = subprocess.run(
        [
            "setpriv",
            "--bounding-set",
            "-net_admin,-sys_admin",
            "--inh-caps",
            "-net_admin,-sys_admin",
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert "root" in proc.stdout and "--no-netns" in proc.stdout, proc.stdout


def test_concurrent_clusters_never_share_an_address(cluster: str, tmp_path: Path) -> None:
    """Three processes, each its own cluster and EDGEBENCH_HOME, create 4 nodes at once."""
    code = textwrap.dedent(
        """
        import sys
        from bench.netns import NodeNamespace
        nss = [NodeNamespace.create(sys.argv[1], f"edge-{i}") for i in range(4)]
        print(" ".join(ns.host_addr + "," + ns.veth_host for ns in nss), flush=True)
        sys.stdin.readline()
        for ns in nss:
            ns.remove()
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, f"{cluster}-{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ
            | {"PYTHONPATH": str(ROOT), "EDGEBENCH_HOME": str(tmp_path / f"home{i}")},
        )
        for i in range(3)
    ]
    try:
        seen = []
        for proc in procs:
            assert proc.stdout is not None
            seen += proc.stdout.readline().split()
        addrs = [item.split(",")[0] for item in seen]
        assert len(addrs) == 12 and len(set(addrs)) == 12, seen
        for item in seen:  # each address really is on its own veth
            addr, veth = item.split(",")
            out = subprocess.run(
                ["ip", "-4", "-o", "addr", "show", "to", addr], capture_output=True, text=True
            ).stdout
            assert out.split()[1] == veth, (item, out)
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.communicate("\n", timeout=30)
    for i in range(3):
        assert leftovers(f"{cluster}-{i}") == []
