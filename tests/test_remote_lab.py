"""The remote provider's fault path for real: a node namespace with an sshd on its management
veth (the local lab), the kernel link driven over SSH, and the dead-man timer on the node."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns_support import EchoServer, assert_clean, require_netns
from sshd_support import require_sshd

from bench.distros.remote.check import check_node, failure
from bench.distros.remote.lab import Lab, parse_lab
from bench.distros.remote.runner import HostRunner
from bench.distros.remote.sshd import Keys
from bench.distros.remote.testbed import LabNodeNs, lab_document, start_node_sshd, write_lab
from bench.faults.kernel import KernelLink
from bench.netns import NodeNamespace

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent


def connects(ns: NodeNamespace, host: str, port: int) -> bool:
    code = f"import socket; socket.create_connection(({host!r}, {port}), timeout=1).close()"
    return ns.run([sys.executable, "-c", code]).ok


@pytest.fixture
def testbed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LabNodeNs, Lab, EchoServer]]:
    require_netns()
    require_sshd()
    monkeypatch.setenv("EDGEBENCH_HOME", str(tmp_path / "home"))
    cluster = f"r{os.getpid()}-{os.urandom(3).hex()}"
    with NodeNamespace.create(cluster, "edge-0") as ns:
        echo = EchoServer(ns.host_addr)
        keys = Keys(tmp_path / "ssh").make()
        node = start_node_sshd(ns, keys, tmp_path / "ssh")
        doc = lab_document(
            "vanilla", tmp_path / "kubeconfig", [(node, [ns.endpoint([echo.port])])], keys
        )
        path = write_lab(tmp_path / "lab.yaml", doc)
        lab = parse_lab(path.read_text(), path)
        try:
            yield node, lab, echo
        finally:
            echo.close()
            node.sshd.stop()
    assert_clean(cluster, ("edge-0",))


def test_the_local_lab_passes_its_check_and_a_cut_over_ssh_spares_ssh(
    testbed: tuple[LabNodeNs, Lab, EchoServer],
) -> None:
    node, lab, echo = testbed
    report = check_node(lab, lab.nodes[0], None)
    assert failure([report]) is None, report.problems
    assert report.ssh_client is not None and report.ssh_client[0] == node.host_side
    assert report.dev == node.ns.veth_node
    host = lab.nodes[0].ssh.host()
    link = KernelLink(
        "edge-0", HostRunner(host), lab.nodes[0].endpoints, lab.nodes[0].dev, owner_pid=None
    )
    assert connects(node.ns, node.ns.host_addr, echo.port)
    with link.cut("blackhole"):
        assert not connects(node.ns, node.ns.host_addr, echo.port)
        assert host.run("true").succeeded  # the management path is untouched
        assert "EDGEBENCH-OUT" in node.ns.run([link.iptables, "-S"]).out
    assert connects(node.ns, node.ns.host_addr, echo.port)
    link.restore()  # what the remote driver's down() does: the chains go
    assert "EDGEBENCH-OUT" not in node.ns.run([link.iptables, "-S"]).out


HARNESS = textwrap.dedent(
    """
    import sys, time
    from bench.distros.remote.lab import load_lab
    from bench.distros.remote.runner import HostRunner
    from bench.faults.kernel import KernelLink
    node = load_lab(sys.argv[1]).nodes[0]
    link = KernelLink(node.name, HostRunner(node.ssh.host()), node.endpoints, node.dev,
                      owner_pid=None, hold_s=float(sys.argv[2]), margin_s=float(sys.argv[3]))
    link.cut("blackhole").apply()
    print("cut", flush=True)
    time.sleep(600)
    """
)


def test_a_sigkilled_harness_leaves_no_partition_past_the_dead_man_bound(
    testbed: tuple[LabNodeNs, Lab, EchoServer],
) -> None:
    node, lab, echo = testbed
    hold_s, margin_s = 2.0, 1.0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS, str(lab.path), str(hold_s), str(margin_s)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert harness.stdout is not None and harness.stdout.readline().strip() == "cut"
        cut_at = time.monotonic()
        assert not connects(node.ns, node.ns.host_addr, echo.port)
        harness.send_signal(signal.SIGKILL)
        harness.wait()
        # over SSH the harness's pid is not watched: the time bound alone restores the node,
        # never before hold + margin, at most a second after (plus one poll here)
        while (
            "EDGEBENCH-OUT"
            in node.ns.run(["iptables-nft", "-S"]).out + node.ns.run(["iptables-legacy", "-S"]).out
        ):
            assert time.monotonic() - cut_at < hold_s + margin_s + 3, "dead-man timer did not fire"
            time.sleep(0.2)
        restored_after = time.monotonic() - cut_at
        assert restored_after >= hold_s + margin_s - 0.5
        assert connects(node.ns, node.ns.host_addr, echo.port)
    finally:
        harness.kill()
        harness.wait()
        if harness.stdout is not None:
            harness.stdout.close()
