"""vanilla/docker for real: hollow kubelets in containers behind their own links, labelled
resources, and nothing labelled left after a teardown, a SIGINT mid-fault or a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_leftovers import leftovers

from bench.distros.docker import engine, labels, reaper
from bench.distros.docker.cluster import GATE
from bench.distros.docker.nsrunner import ContainerNetns
from bench.distros.docker.vanilla import VanillaDocker
from bench.faults.base import FaultKind
from bench.faults.composite import CompositeLink
from bench.model import ClusterSpec
from bench.netns.reaper import deadman_processes
from bench.observe.watch import ClusterObserver
from bench.procs import wait_for
from bench.scenario import workload
from edgebench_fixtures.cluster import require_available

pytestmark = [pytest.mark.integration, pytest.mark.cluster]
ROOT = Path(__file__).resolve().parents[1]
#: cluster names start with it: sessions sharing a Docker engine tell theirs apart
PREFIX = os.environ.get("EDGEBENCH_TEST_CLUSTER_PREFIX", "t-")


@pytest.fixture(scope="module")
def vanilla(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VanillaDocker]:
    require_available(VanillaDocker)
    spec = ClusterSpec(
        name=f"{PREFIX}vanilla-docker-{os.getpid()}",
        edge_nodes=2,
        profile="fast",
        state_root=tmp_path_factory.mktemp("clusters"),
    )
    with VanillaDocker(spec) as cluster:
        yield cluster
    assert leftovers(spec.name) == []


def test_agents_are_labelled_containers_reaching_only_their_link(vanilla: VanillaDocker) -> None:
    client = vanilla.client
    agents = client.containers.list(filters=labels.cluster_filter(vanilla.spec.name))
    assert sorted(c.labels[f"{labels.PREFIX}.node"] for c in agents) == ["edge-0", "edge-1"]
    for c in agents:
        assert c.labels[labels.RUN_ID] == vanilla.run_id
        assert c.labels[labels.OWNER_PID] == str(os.getpid())
    for node in vanilla.edge_nodes:
        (dial,) = node.dial.values()
        assert dial.startswith(f"{vanilla.gateway}:")  # the link, on the cluster network
        kubeconfig = (vanilla.state_dir / "nodes" / node.name / "kubeconfig").read_text()
        assert f"server: https://{dial}" in kubeconfig


def test_kubelet_view_survives_a_cut_and_a_container_restart_is_a_reboot(
    vanilla: VanillaDocker,
) -> None:
    with (
        ClusterObserver(vanilla.api).running() as obs,
        workload.namespace(vanilla.api, "t-vanilla-docker") as ns,
    ):
        workload.pod(vanilla.api, ns, "p", "edge-1")
        obs.events.wait_for(
            lambda e: e.kind == "pod" and e.name == f"{ns}/p" and e.ready == "True",
            timeout=60,
            what="pod p Ready",
        )
        assert vanilla.edge_pods("edge-1").get(f"{ns}/p") == "Running"
        with vanilla.node("edge-1").link.cut(mode="reset"):
            assert vanilla.edge_pods("edge-1").get(f"{ns}/p") == "Running"  # still held
            vanilla.restart_agent("edge-1")
            views: list[dict[str, str]] = []

            def answers() -> bool:
                try:
                    views.append(vanilla.edge_pods("edge-1"))
                except Exception:
                    return False
                return True

            wait_for(answers, 60, "the restarted kubelet to answer")
            assert f"{ns}/p" not in views[-1]  # a reboot without the API: no pods
        # Back: the pod is Ready in the control plane (it may never have left Ready if the
        # outage was shorter than the grace period: wait on its state, not on a new event) and
        # the rebooted kubelet holds it again, learned from the API once the link returned.
        obs.events.wait_until(
            lambda: any(e.ready == "True" for e in obs.pods_where(lambda e: e.name == f"{ns}/p")),
            timeout=180,  # recovery in containers can take a minute (docs/containers.md)
            what="pod p Ready after the link came back",
        )
        wait_for(
            lambda: vanilla.edge_pods("edge-1").get(f"{ns}/p") == "Running",
            180,
            "the rebooted kubelet to hold pod p again",
        )


def _fault_active(state_file: Path, cluster: str) -> bool:
    """Whether a fault is on one of the cluster's links: a kernel rule in a container's
    namespace (cuts, loss) or a toxic or disabled proxy (the rest)."""
    return _kernel_fault_active(cluster) or _toxiproxy_fault_active(state_file)


def _kernel_fault_active(cluster: str) -> bool:
    client = engine.connect()
    try:
        for container in client.containers.list(filters=labels.cluster_filter(cluster)):
            show = "iptables-nft -S OUTPUT 2>/dev/null; iptables-legacy -S OUTPUT 2>/dev/null"
            if "EDGEBENCH-OUT" in ContainerNetns(container)(["sh", "-c", show]).out:
                return True
    finally:
        client.close()
    return False


def _toxiproxy_fault_active(state_file: Path) -> bool:
    try:
        url = json.loads(state_file.read_text()).get("toxiproxy")
        if not url:
            return False
        with urllib.request.urlopen(f"{url}/proxies", timeout=2) as resp:
            proxies = json.load(resp)
    except (OSError, ValueError):
        return False
    return any(not p["enabled"] or p["toxics"] for p in proxies.values())


@pytest.mark.slow
def test_nothing_labelled_remains_after_sigint_mid_fault(tmp_path: Path) -> None:
    require_available(VanillaDocker)
    name = f"{PREFIX}docker-sigint-{os.getpid()}"
    home = tmp_path / "home"
    tools = Path(os.environ.get("EDGEBENCH_HOME") or Path.home() / ".cache" / "edgebench")
    home.mkdir()
    (home / "tools").symlink_to(tools / "tools")
    env = {**os.environ, "EDGEBENCH_HOME": str(home), "CI": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "suites/test_link_flapping.py", "-m", "smoke",
         "--distro=vanilla", "--provider=docker", f"--cluster-name={name}",
         f"--results-dir={tmp_path / 'results'}", "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        state = home / "clusters" / name / "state.json"
        wait_for(lambda: _fault_active(state, name), 240, "the scenario to apply a fault")
        assert leftovers(name), "the cluster's containers should exist mid-fault"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert leftovers(name) == [], out.decode(errors="replace")[-3000:]
    assert not (home / "clusters" / name).exists()


def test_reaper_removes_what_a_killed_owner_left(tmp_path: Path) -> None:
    require_available(VanillaDocker)
    name = f"{PREFIX}docker-reap-{os.getpid()}"
    client = engine.connect()
    try:
        dead = subprocess.Popen(["true"])
        dead.wait()  # a pid that ran and is gone
        net = client.networks.create(
            f"edgebench-{name}", labels=labels.labels(name, "r", "network", owner_pid=dead.pid)
        )
        live = client.networks.create(
            f"edgebench-{name}-live", labels=labels.labels(name, "r", "network")
        )
        try:
            removed = reaper.reap(client)
            assert f"network {net.name}" in removed
            assert f"network {live.name}" not in removed  # its owner (this process) runs
        finally:
            reaper.remove(client, name)
        assert leftovers(name) == []
    finally:
        client.close()


def _connects(run: ContainerNetns, address: str) -> bool:
    """Whether a TCP connection from the container's namespace to ``address`` opens."""
    host, _, port = address.rpartition(":")
    script = f"import socket; socket.create_connection(({host!r}, {port}), timeout=3).close()"
    return run([sys.executable, "-c", script]).ok


def test_kernel_cut_inside_one_container_namespace(vanilla: VanillaDocker) -> None:
    upstream = vanilla.control_plane.addresses.apiserver
    runs = {n: ContainerNetns(vanilla.agents[n].container) for n in ("edge-0", "edge-1")}  # type: ignore[attr-defined]
    dial = {n: vanilla.node(n).dial_for(upstream) for n in runs}
    assert _connects(runs["edge-0"], dial["edge-0"])
    link = vanilla.kernel_link("edge-0")
    try:
        with link.cut("reset"):
            assert not _connects(runs["edge-0"], dial["edge-0"])  # its link is cut
            assert _connects(runs["edge-1"], dial["edge-1"])  # the other node's is not
            assert _connects(runs["edge-0"], dial["edge-1"])  # scoped to its own listener
        assert _connects(runs["edge-0"], dial["edge-0"])
    finally:
        link.restore()


def _run(vanilla: VanillaDocker, node: str) -> ContainerNetns:
    container = vanilla.agents[node].container  # type: ignore[attr-defined]
    return ContainerNetns(container)


def _timers(tag: str) -> list[str]:
    return [p for p in deadman_processes() if tag in p]


def test_links_are_kernel_then_toxiproxy(vanilla: VanillaDocker) -> None:
    assert VanillaDocker.link_backends(vanilla.spec) == {"kernel", "toxiproxy"}
    assert FaultKind.LOSS in VanillaDocker.link_faults(vanilla.spec)
    link = vanilla.node("edge-0").link
    assert isinstance(link, CompositeLink)
    assert link.backends() == ("kernel", "toxiproxy")
    assert link.backend_for(FaultKind.CUT_BLACKHOLE) == "kernel"
    assert link.backend_for(FaultKind.CUT_RESET) == "kernel"
    assert link.backend_for(FaultKind.LOSS) == "kernel"
    assert link.backend_for(FaultKind.LATENCY) == "toxiproxy"
    assert link.backend_for(FaultKind.BANDWIDTH) == "kernel"  # tc and ifb in the container
    cut = link.cut("blackhole")
    assert cut.label == "cut/blackhole via kernel"


def test_a_cut_outlives_a_container_restart_and_the_agent_reconnects_after(
    vanilla: VanillaDocker,
) -> None:
    """An agent restarted while its link is cut must come back cut: the new namespace gets
    the cut (and a fresh dead-man timer) before the agent runs; after the restore the
    restarted kubelet reaches the API server and its node is Ready again."""
    node = "edge-0"
    dial = vanilla.node(node).dial_for(vanilla.control_plane.addresses.apiserver)
    kernel = vanilla.kernel_link(node)
    container = vanilla.agents[node].container  # type: ignore[attr-defined]
    with ClusterObserver(vanilla.api).running() as obs:
        with vanilla.node(node).link.cut("blackhole") as fault:
            assert fault.label == "cut/blackhole via kernel"
            pid_before = engine.init_pid(container)
            vanilla.restart_agent(node)
            restarted = time.monotonic()
            assert engine.init_pid(container) != pid_before  # a new namespace
            assert container.exec_run(["test", "-e", GATE]).exit_code == 0  # the agent runs
            # dropped in the kernel: not even the proxy's handshake completes
            assert not _connects(_run(vanilla, node), dial)
            assert len(_timers(kernel.deadman.tag)) == 1  # the old namespace's was claimed
            lost = obs.events.wait_for(
                lambda e: e.kind == "node" and e.name == node and e.ready != "True",
                timeout=vanilla.timings.detect_bound_s + 20,
                since_mono=restarted - 1,
                what=f"{node} not Ready: the restarted kubelet must not reach its link",
            )
            assert obs.node_ready(node) != "True"
        assert _timers(kernel.deadman.tag) == []
        assert _connects(_run(vanilla, node), dial)
        obs.events.wait_for(
            lambda e: e.kind == "node" and e.name == node and e.ready == "True",
            timeout=120,
            since_mono=lost.mono,
            what=f"{node} Ready again after the restore",
        )


def test_edgebench_fault_cuts_a_docker_node_in_its_container(
    vanilla: VanillaDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``edgebench fault`` rebuilds the node's link from the cluster's state as the cluster
    has it: kernel (in the container's namespace) + Toxiproxy."""
    from bench.cli import node as cli_node

    monkeypatch.setattr(cli_node, "state_dir", lambda name: vanilla.state)
    link = cli_node.node_link(vanilla.spec.name, "edge-1", hold_s=60)
    assert link.backends() == ("kernel", "toxiproxy")
    dial = vanilla.node("edge-1").dial_for(vanilla.control_plane.addresses.apiserver)
    try:
        with link.cut("blackhole") as fault:
            assert fault.label == "cut/blackhole via kernel"
            assert not _connects(_run(vanilla, "edge-1"), dial)
        assert _connects(_run(vanilla, "edge-1"), dial)
    finally:
        link.restore()


HARNESS = textwrap.dedent(
    """
    import sys, time
    from bench.distros.docker import engine
    from bench.distros.docker.nsrunner import ContainerNetns
    from bench.faults.kernel import Endpoint, KernelLink

    name, host, port, gate = sys.argv[1:5]
    container = engine.connect().containers.get(name)
    link = KernelLink("edge-1", ContainerNetns(container), [Endpoint(host, (int(port),))],
                      "eth0", hold_s=600, margin_s=1.0, poll_s=0.2)
    link.cut("blackhole").apply()
    container.restart(timeout=5)  # a new namespace: the cut follows the node there
    link.reinstall()
    container.exec_run(["touch", gate])
    print("cut", link.deadman.tag, flush=True)
    time.sleep(600)
    """
)


def test_dead_man_timer_restores_a_container_link_when_the_harness_is_killed(
    vanilla: VanillaDocker,
) -> None:
    """A harness that cut a container's link, restarted the container (the cut re-installed
    in its new namespace) and is then SIGKILLed: the dead-man timer restores the link."""
    node = "edge-1"
    dial = vanilla.node(node).dial_for(vanilla.control_plane.addresses.apiserver)
    host, _, port = dial.rpartition(":")
    container = vanilla.agents[node].container  # type: ignore[attr-defined]
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS, container.name, host, port, GATE],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    assert harness.stdout is not None
    try:
        said, tag = harness.stdout.readline().split()
        assert said == "cut"
        assert not _connects(_run(vanilla, node), dial)
        assert len(_timers(tag)) == 1
        harness.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        harness.wait()
    finally:
        harness.kill()
        harness.wait()
        harness.stdout.close()
    while not _connects(_run(vanilla, node), dial):
        assert time.monotonic() - killed < 8, "the node is still partitioned 8 s after the kill"
        time.sleep(0.2)
    print(f"reachable {time.monotonic() - killed:.2f} s after the SIGKILL")
    wait_for(lambda: _timers(tag) == [], 5, "the dead-man timer to exit")
    rules = _run(vanilla, node)([vanilla.kernel_link(node).iptables, "-S"]).out
    assert "EDGEBENCH-OUT" not in rules


def test_kwok_in_containers_goes_not_ready_only_through_its_link(tmp_path: Path) -> None:
    from bench.distros.docker.kwok import KwokDocker

    require_available(KwokDocker)
    spec = ClusterSpec(
        name=f"{PREFIX}kwok-docker-{os.getpid()}", edge_nodes=2, profile="fast", state_root=tmp_path
    )
    with KwokDocker(spec) as kwok, ClusterObserver(kwok.api).running() as obs:
        assert leftovers(spec.name)  # two containers and the network
        with kwok.node("edge-1").link.cut():
            lost = obs.events.wait_for(
                lambda e: e.kind == "node" and e.name == "edge-1" and e.ready != "True",
                timeout=kwok.timings.detect_bound_s + 15,
                what="edge-1 not Ready while its link is cut",
            )
            assert obs.node_ready("edge-0") == "True"
        obs.events.wait_for(
            lambda e: e.kind == "node" and e.name == "edge-1" and e.ready == "True",
            timeout=60,
            since_mono=lost.mono,
            what="edge-1 Ready again",
        )
    assert leftovers(spec.name) == []
