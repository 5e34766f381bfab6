"""DNAT steering (shared by k3s and upstream KubeEdge in containers) against a real container:
the rules land in the container's namespace once, then the marker that lets its agent start."""

from __future__ import annotations

import os

import pytest
from docker_leftovers import leftovers

from bench.distros.docker import engine, images, kubeedge_spec, reaper, steering
from bench.distros.docker import labels as lbl
from bench.distros.docker.cluster import UNPRIVILEGED
from bench.distros.docker.nsrunner import ContainerNetns
from bench.distros.docker.spec import ContainerSpec
from bench.errors import EnvironmentUnavailableError

pytestmark = [pytest.mark.integration]


def test_rules_go_in_once_then_the_marker() -> None:
    try:
        client = engine.connect()
        engine.require_image(client, images.agents_image(), "edgebench images build")
    except EnvironmentUnavailableError as exc:
        pytest.skip(str(exc))
    name = f"wtk-steer-{os.getpid()}"
    spec = ContainerSpec(
        name=f"edgebench-{name}",
        image=images.agents_image(),
        command=("sleep", "300"),
        labels=lbl.labels(name, "r", "agent"),
        network="bridge",
    )
    try:
        container, _ = engine.run(client, spec, (UNPRIVILEGED,))
        rules = kubeedge_spec.dnat_rules(
            "10.253.99.3", {10000: "10.253.99.1:40001", 10002: "10.253.99.1:40002"}
        )
        steering.steer(container, rules, "/tmp/steered", "edge-0")
        steering.steer(container, rules, "/tmp/steered", "edge-0")  # again: no duplicates
        listed = ContainerNetns(container)(["iptables", "-w", "-t", "nat", "-S", "OUTPUT"])
        assert listed.ok, listed.explain()
        dnat = [line for line in listed.out.splitlines() if "DNAT" in line]
        assert len(dnat) == 2, listed.out
        assert "--to-destination 10.253.99.1:40001" in dnat[0]
        assert "--to-destination 10.253.99.1:40002" in dnat[1]
        assert container.exec_run(["test", "-e", "/tmp/steered"]).exit_code == 0
    finally:
        reaper.remove(client, name)
        client.close()
    assert leftovers(name) == []
