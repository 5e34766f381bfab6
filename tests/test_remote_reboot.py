"""A lab node's reboot (``allow_reboot: true``), sequenced against the throw-away sshd of a
node namespace. No machine can be rebooted here: the lab's ``reboot_command`` is a
**stand-in** (this file only) that does to the namespace what a reboot does to a node: every
process of it ends (sshd and its sessions, the dead-man timer, the agent), the link's
iptables chains are gone, and after a pause sshd starts again, then the agent. The kernel's
boot id cannot change in a namespace: the lab's ``boot_id_command`` reads a file, which the
stand-in rewrites at its "boot" (or, to stand for a command that reboots nothing, leaves)."""

from __future__ import annotations

import os
import re
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from netns_support import EchoServer, assert_clean, require_netns
from sshd_support import require_sshd

from bench.distros.remote.drivers import RemoteSettings, VanillaRemote
from bench.distros.remote.lab import parse_lab
from bench.distros.remote.reboot import reboot_node
from bench.distros.remote.sshd import Keys, sshd_binary
from bench.distros.remote.testbed import LabNodeNs, lab_document, start_node_sshd, write_lab
from bench.errors import ClusterTimeoutError, NotSupportedError
from bench.faults.kernel import KernelLink
from bench.faults.kernel.rules import teardown_script
from bench.hosts import CommandResult
from bench.model import Capability, ClusterSpec
from bench.netns import NodeNamespace

pytestmark = pytest.mark.integration

#: the stand-in for ``systemctl reboot``: power off (every process of the namespace but this
#: script ends, the link's rules go), boot (sshd again after a pause, then the agent)
STAND_IN = textwrap.dedent(
    """\
    rm -f {flag}
    for p in $(ip netns pids {ns}); do
      [ "$p" = $$ ] || [ "$p" = "$PPID" ] || kill -9 "$p" 2>/dev/null
    done
    sh {teardown} >/dev/null 2>&1
    sleep 2
    {new_boot_id}
    {sshd} -f {config}
    sleep 0.5
    touch {flag}
    """
)


@dataclass
class Bed:
    node: LabNodeNs
    echo: EchoServer
    folder: Path
    keys: Keys
    flag: Path
    boot_id: Path

    def cluster(self, reboot_command: str, timeout_s: float = 30.0) -> VanillaRemote:
        endpoints = [self.node.ns.endpoint([self.echo.port])]
        doc = lab_document("vanilla", self.folder / "kc", [(self.node, endpoints)], self.keys)
        doc["agent"] = "stand-in-agent"
        doc["allow_reboot"] = True
        doc["reboot_timeout_s"] = timeout_s
        doc["nodes"][0]["reboot_command"] = reboot_command
        doc["nodes"][0]["agent_active_command"] = f"test -e {self.flag}"
        doc["nodes"][0]["boot_id_command"] = f"cat {self.boot_id}"
        path = write_lab(self.folder / f"lab-{os.urandom(2).hex()}.yaml", doc)
        parse_lab(path.read_text(), path)
        cluster = VanillaRemote(
            ClusterSpec(name="wtr-reboot", provider_settings=RemoteSettings(path))
        )
        cluster._links["edge-0"] = cluster._make_link(cluster.lab.nodes[0])
        return cluster


@pytest.fixture
def bed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bed]:
    require_netns()
    require_sshd()
    monkeypatch.setenv("EDGEBENCH_HOME", str(tmp_path / "home"))
    cluster = f"wtr-{os.urandom(3).hex()}"
    with NodeNamespace.create(cluster, "edge-0") as ns:
        echo = EchoServer(ns.host_addr)
        keys = Keys(tmp_path / "ssh").make()
        node = start_node_sshd(ns, keys, tmp_path / "ssh")
        flag = tmp_path / "agent-running"
        flag.touch()
        boot_id = tmp_path / "boot_id"
        boot_id.write_text("boot-1\n")
        try:
            yield Bed(node, echo, tmp_path, keys, flag, boot_id)
        finally:
            echo.close()
            node.sshd.stop()
    assert_clean(cluster, ("edge-0",))


def connects(ns: NodeNamespace, host: str, port: int) -> bool:
    code = f"import socket; socket.create_connection(({host!r}, {port}), timeout=1).close()"
    return ns.run([sys.executable, "-c", code]).ok


def timers(tag: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and tag.encode() in (proc / "cmdline").read_bytes():
                found.append(proc.name)
        except OSError:
            continue
    return found


def stand_in(bed: Bed, link: KernelLink, new_boot: bool = True) -> str:
    teardown = bed.folder / "teardown.sh"
    teardown.write_text(teardown_script(link.cfg))
    script = bed.folder / "stand-in-reboot.sh"
    new_boot_id = f"echo boot-2 > {bed.boot_id}" if new_boot else ":"
    script.write_text(STAND_IN.format(flag=bed.flag, ns=bed.node.ns.name, teardown=teardown,
                                      sshd=sshd_binary(), config=bed.node.sshd.config,
                                      new_boot_id=new_boot_id))  # fmt: skip
    return f"sh {script}"


def test_a_reboot_during_a_cut_comes_back_still_cut_with_its_dead_man_timer(bed: Bed) -> None:
    ns, port = bed.node.ns, bed.echo.port
    cluster = bed.cluster("placeholder")
    link = cluster._links["edge-0"]
    assert isinstance(link, KernelLink)
    cluster = bed.cluster(stand_in(bed, link))  # the same chain: the stand-in flushes it
    link = cluster._links["edge-0"]
    assert isinstance(link, KernelLink)
    assert Capability.REBOOT in cluster.CAPABILITIES
    try:
        with link.cut("reset"):
            assert not connects(ns, ns.host_addr, port)
            deadline = link._deadline
            assert timers(link.deadman.tag)
            note = cluster.reboot("edge-0")
            assert re.fullmatch(
                r"rebooted: SSH down after \d+\.\ds, back after \d+\.\ds, cut again at \d+\.\ds, "
                r"agent active at \d+\.\ds; SSH polled every 0.5s with a 2s connect timeout "
                r"\(down and back within 2.5s\)",
                note,
            ), note
            assert bed.boot_id.read_text() == "boot-2\n"  # back: a new boot id was read
            assert bed.flag.exists()  # the agent is back
            assert not connects(ns, ns.host_addr, port)  # still offline: the cut is back
            assert "EDGEBENCH-OUT" in ns.run([link.iptables, "-S"]).out
            assert timers(link.deadman.tag), "the dead-man timer was not re-armed"
            assert link._deadline == deadline  # for the time it had left, not a fresh hold
        assert connects(ns, ns.host_addr, port)
    finally:
        cluster.down()
    assert not timers(link.deadman.tag)


def test_sshd_back_with_the_same_boot_id_is_not_back_from_a_reboot(bed: Bed) -> None:
    """What an SSH hiccup looks like (down, then answering with the old boot id): the cut is
    not re-installed and the agent not waited for; the case fails naming the boot id."""
    cluster = bed.cluster("placeholder")
    link = cluster._links["edge-0"]
    assert isinstance(link, KernelLink)
    cluster = bed.cluster(stand_in(bed, link, new_boot=False), timeout_s=6)
    link = cluster._links["edge-0"]
    assert isinstance(link, KernelLink)
    reinstalled: list[bool] = []
    link.reinstall = lambda: reinstalled.append(True) or True  # type: ignore[method-assign]
    try:
        with pytest.raises(ClusterTimeoutError) as info:
            cluster.reboot("edge-0")
    finally:
        cluster.down()
    assert str(info.value).startswith(
        f"lab node edge-0: no new boot id after SSH went down (`cat {bed.boot_id}`): the node "
        "did not come back, or the command did not restart its kernel within 6s of `sh "
    ), info.value
    assert reinstalled == []
    assert bed.flag.exists()  # sshd did answer again: only the boot id said "not back"


def test_a_reboot_command_that_does_not_reboot_is_an_error_naming_the_step(bed: Bed) -> None:
    cluster = bed.cluster("true", timeout_s=3)
    try:
        with pytest.raises(ClusterTimeoutError) as info:
            cluster.reboot("edge-0")
    finally:
        cluster.down()
    assert str(info.value) == (
        "lab node edge-0: SSH kept answering: the node did not go down within 3s of `true` "
        "(reboot_timeout_s in the lab file)"
    )


def test_without_allow_reboot_the_reboot_cases_are_skipped_saying_why(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(
        "distro: vanilla\nkubeconfig: kc\nnodes:\n  - name: e\n    host: ssh://root@127.0.0.1\n"
        "    fault_backend: none\n"
    )
    spec = ClusterSpec(name="wtr-noreboot", provider_settings=RemoteSettings(path))
    assert VanillaRemote.lacks(Capability.REBOOT, spec) == (
        "the lab does not say allow_reboot: true (or a node has no agent nor "
        "agent_active_command to wait for after the reboot)"
    )
    with pytest.raises(NotSupportedError, match="lab node e: the lab does not say allow_reboot"):
        VanillaRemote(spec).reboot("e")
    path = tmp_path / "allowed.yaml"  # (a lab file is read once per path)
    path.write_text(
        (tmp_path / "lab.yaml").read_text().replace("nodes:", "allow_reboot: true\nnodes:")
    )
    spec = ClusterSpec(name="wtr-reboot2", provider_settings=RemoteSettings(path))
    assert VanillaRemote.lacks(Capability.REBOOT, spec) is None  # kubelet: systemctl is-active


class FakeHost:
    """SSH answering per a script: ``boot_ids`` are what successive boot-id reads return
    ("" for a failed read), ``answers`` what successive ``true`` polls do."""

    def __init__(self, boot_ids: list[str], answers: list[bool]) -> None:
        self.boot_ids, self.answers = boot_ids, answers

    def run(self, cmd: str, *args: str) -> CommandResult:
        if cmd == "true":
            ok = self.answers.pop(0) if self.answers else True
            return CommandResult(cmd, 0 if ok else 255, b"", b"")
        if cmd.startswith("cat "):
            got = self.boot_ids.pop(0) if self.boot_ids else "boot-2"
            return CommandResult(cmd, 0 if got else 1, got.encode(), b"")
        return CommandResult(cmd, 0, b"", b"")

    check = run


def test_a_failed_first_boot_id_read_is_said_and_not_taken_for_an_unchanged_kernel(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(
        "distro: vanilla\nkubeconfig: kc\nallow_reboot: true\nnodes:\n  - name: e\n"
        "    host: ssh://root@127.0.0.1\n    fault_backend: none\n    agent: kubelet\n"
    )
    node = parse_lab(path.read_text(), path).nodes[0]
    host = FakeHost(boot_ids=[""], answers=[])
    poll = FakeHost(boot_ids=["boot-2"], answers=[True, False])
    times = reboot_node(host, node, None, 10, poll_s=0.01, poll_host=poll)  # type: ignore[arg-type]
    assert not times.boot_id_known
    assert "did not restart the kernel" not in times.note()
    assert times.note().endswith(
        "; the boot id could not be read before the command: back is the first boot id read "
        "after SSH went down, not a boot id seen to change"
    )
