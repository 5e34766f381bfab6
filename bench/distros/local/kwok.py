"""``--distro=kwok --provider=local``: the embedded default.

A real control plane; each edge node is a KWOK controller process managing just that node,
whose only route to the API server is the node's own Toxiproxy link. Node status, the node
Lease and pod status all flow through the link, so cutting it silences exactly that node.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import yaml

from bench.build import tools
from bench.distros.local.cluster import LocalCluster
from bench.distros.local.controlplane import write_kubeconfig
from bench.model import Capability, EdgeNode
from bench.procs import Supervised

_STAGES = Path(__file__).with_name("kwok_stages.yaml")


def render_stages(heartbeat_s: float) -> str:
    """The stage configuration with the profile's node status period filled in."""
    docs = list(yaml.safe_load_all(_STAGES.read_text()))
    by_name = {d["metadata"]["name"]: d for d in docs}
    running = by_name["edgebench-pod-start"]["spec"]["next"]["statusTemplate"]
    for doc in docs:
        nxt = doc["spec"]["next"]
        if str(nxt.get("statusTemplate", "")).startswith("SAME_AS_"):
            nxt["statusTemplate"] = running
        delay = doc["spec"].get("delay")
        if delay and delay.get("durationMilliseconds") == "__HEARTBEAT_MS__":
            delay["durationMilliseconds"] = int(heartbeat_s * 1000)
    return yaml.safe_dump_all(docs, sort_keys=False)


class KwokLocal(LocalCluster):
    name = "kwok"
    AGENT_BINARIES = ("kwok",)
    LACKS: ClassVar[Mapping[Capability, str]] = {
        **LocalCluster.LACKS,
        Capability.EDGE_POD_VIEW: "KWOK has no runtime and keeps no pod list of its own",
        Capability.EDGE_VOLUME_VIEW: "KWOK has no runtime and mounts nothing",
    }

    def node_object(self, name: str) -> Any:  # the client takes plain dicts as bodies
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "node-role.kubernetes.io/edge": "",
                    "type": "kwok",
                },
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            },
        }

    def start_agent(self, node: EdgeNode) -> Supervised:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        timings = self.timings
        config = self.state_dir / "kwok-stages.yaml"
        if not config.exists():
            config.write_text(render_stages(timings.node_status_update_period_s))
        kubeconfig = write_kubeconfig(
            self.state_dir / "nodes" / node.name / "kubeconfig",
            f"https://{node.dial_for(self.control_plane.addresses.apiserver)}",
            self.control_plane.ca_cert,
            self.control_plane.client_cert(f"system:node:{node.name}", "system:nodes"),
        )
        try:
            client.CoreV1Api(self.api).create_node(self.node_object(node.name))
        except ApiException as exc:
            if exc.status != 409:  # a restarted agent finds its node already there
                raise
        agent = Supervised(
            f"kwok-{node.name}",
            self.agent_argv(
                node.name,
                [
                    tools.tool_path("kwok"),
                    f"--kubeconfig={kubeconfig}",
                    f"--config={config}",
                    f"--manage-single-node={node.name}",
                    f"--node-lease-duration-seconds={int(timings.node_lease_duration_s)}",
                    f"--node-ip={self.node_ip(node.name)}",
                ],
            ),
            self.agent_log(node.name),
            detached=self.spec.detached,
        )
        return agent.start()
