"""``--distro=kwok --provider=docker``: each edge node a KWOK controller managing just that
node, in its own container behind its own link; see :mod:`bench.distros.docker.cluster`."""

from __future__ import annotations

from bench.distros.docker import images
from bench.distros.docker.cluster import DockerAgents
from bench.distros.local.kwok import KwokLocal, render_stages
from bench.model import EdgeNode


class KwokDocker(DockerAgents, KwokLocal):
    name = "kwok"

    def agent_command(self, node: EdgeNode, ip: str) -> tuple[str, ...]:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        timings = self.timings
        config = self.state_dir / "nodes" / node.name / "kwok-stages.yaml"
        config.write_text(render_stages(timings.node_status_update_period_s))
        try:
            client.CoreV1Api(self.api).create_node(self.node_object(node.name))
        except ApiException as exc:
            if exc.status != 409:
                raise
        return (
            f"{images.BIN_DIR}/kwok",
            f"--kubeconfig={self.node_kubeconfig(node)}",
            f"--config={config}",
            f"--manage-single-node={node.name}",
            f"--node-lease-duration-seconds={int(timings.node_lease_duration_s)}",
            f"--node-ip={ip}",
        )
