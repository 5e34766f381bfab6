"""The embedded default (kwok/local) for real: bring-up, a cut that silences exactly one node,
recovery, and nothing left running afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.distros.local.kwok import KwokLocal
from bench.distros.state import clusters_root
from bench.model import ClusterSpec
from bench.observe.watch import ClusterObserver
from bench.procs import pid_alive, port_open
from edgebench_fixtures.cluster import require_available

pytestmark = [pytest.mark.integration, pytest.mark.cluster]
ROOT = Path(__file__).resolve().parent.parent


def _require_tools() -> None:
    require_available(KwokLocal)


@pytest.fixture(scope="module")
def kwok(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KwokLocal]:
    _require_tools()
    spec = ClusterSpec(
        name="t-kwok", edge_nodes=3, profile="fast", state_root=tmp_path_factory.mktemp("clusters")
    )
    with KwokLocal(spec) as cluster:
        yield cluster


def test_every_edge_node_is_ready_and_has_its_own_link(kwok: KwokLocal) -> None:
    names = [n.name for n in kwok.edge_nodes]
    assert names == ["edge-0", "edge-1", "edge-2"]
    apiserver = kwok.control_plane.addresses.apiserver
    assert len({n.dial_for(apiserver) for n in kwok.edge_nodes}) == 3
    with ClusterObserver(kwok.api).running() as obs:
        assert all(obs.node_ready(n) == "True" for n in names)
        assert all(obs.leases.get(n) is not None for n in names)


def test_timings_are_the_effective_fast_profile(kwok: KwokLocal) -> None:
    t = kwok.timings
    assert t.node_monitor_grace_period_s == 8 and t.node_monitor_period_s == 1
    assert t.unreachable_toleration_s == 10 and t.not_ready_toleration_s == 10
    assert t.node_lease_duration_s == 8 and t.node_status_update_period_s == 2


def test_cutting_one_link_silences_that_node_alone(kwok: KwokLocal) -> None:
    t = kwok.timings
    victim, others = "edge-1", ["edge-0", "edge-2"]
    with ClusterObserver(kwok.api).running() as obs:
        with kwok.node(victim).link.cut() as cut:
            assert cut.started_mono is not None
            lost = obs.events.wait_for(
                lambda e: e.kind == "node" and e.node == victim and e.ready != "True",
                timeout=t.detect_bound_s + 5,
                since_mono=cut.started_mono,
                what=f"{victim} not Ready",
            )
            detect = lost.mono - cut.started_mono
            # A silent node is noticed after the grace period, not before.
            assert detect >= t.node_monitor_grace_period_s - t.node_lease_duration_s / 4 - 0.5
            assert detect <= t.detect_bound_s + 1
            taint = "node.kubernetes.io/unreachable:NoExecute"
            obs.events.wait_for(
                lambda e: e.kind == "node" and e.node == victim and taint in e.taints,
                timeout=10,
                since_mono=cut.started_mono,
                what=f"{victim} tainted {taint}",
            )
            # Heartbeats of the other nodes went on: they stayed Ready throughout.
            time.sleep(t.node_monitor_period_s * 2)
            assert [obs.node_ready(n) for n in others] == ["True", "True"]
        assert cut.ended_mono is not None
        back = obs.events.wait_for(
            lambda e: e.kind == "node" and e.node == victim and e.ready == "True",
            timeout=30,
            since_mono=cut.ended_mono,
            what=f"{victim} Ready again",
        )
        assert back.mono > cut.ended_mono
        changed = [
            e.node
            for e in obs.events.snapshot(cut.started_mono)
            if e.kind == "node" and e.ready != "True"
        ]
        assert set(changed) == {victim}


def test_processes_are_gone_after_down(tmp_path: Path) -> None:
    _require_tools()
    spec = ClusterSpec(name="t-down", edge_nodes=1, profile="fast", state_root=tmp_path)
    cluster = KwokLocal(spec)
    try:
        cluster.up()
        state = json.loads((cluster.state_dir / "state.json").read_text())
        pids = list(state["pids"].values())
        api_port = cluster.control_plane.addresses.apiserver_port
        link = cluster.edge_nodes[0].dial_for(cluster.control_plane.addresses.apiserver)
        link_port = int(link.rsplit(":", 1)[1])
        assert len(pids) == 6 and all(pid_alive(p) for p in pids)
    finally:
        cluster.down()
    assert not any(pid_alive(p) for p in pids)
    assert not port_open("127.0.0.1", api_port) and not port_open("127.0.0.1", link_port)
    assert not cluster.state_dir.exists()


def test_cli_up_kubeconfig_down() -> None:
    """``edgebench up`` leaves a cluster running for exploration; ``down`` removes it all."""
    _require_tools()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "bench.cli"]
    name = f"t-cli-{os.getpid()}"
    up = subprocess.run(
        [*cli, "up", "--name", name, "--edge-nodes", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    state_file = clusters_root() / name / "state.json"
    try:
        assert up.returncode == 0, up.stderr
        assert "every edge node is Ready" in up.stderr
        kubeconfig = subprocess.run(
            [*cli, "kubeconfig", name], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        assert Path(kubeconfig).is_file()
        pids = list(json.loads(state_file.read_text())["pids"].values())
        assert len(pids) == 7 and all(pid_alive(p) for p in pids)  # survived the CLI's exit
        nodes = subprocess.run(
            ["kubectl", "--kubeconfig", kubeconfig, "get", "nodes", "-o", "name"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if nodes.returncode == 0:  # kubectl is optional on users' machines
            assert nodes.stdout.split() == ["node/edge-0", "node/edge-1"]
    finally:
        down = subprocess.run(
            [*cli, "down", name], env=env, capture_output=True, text=True, timeout=60
        )
    assert down.returncode == 0, down.stderr
    assert not any(pid_alive(p) for p in pids)
    assert not state_file.parent.exists()
    again = subprocess.run([*cli, "down", name], env=env, capture_output=True, text=True)
    assert again.returncode == 2 and f"no cluster named '{name}'" in again.stderr
