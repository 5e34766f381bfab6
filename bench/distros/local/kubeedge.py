"""``--distro=kubeedge --provider=local``: the same control plane plus a real cloudcore
(KubeEdge v1.20.0); each edge node a ``hollowedge``: KubeEdge's own edged (a kubelet),
edgehub and metaManager with its SQLite store, over a fake container runtime. Each edge node
reaches cloudcore's cloudhub (websocket, and https for its certificate) only through its own
link, never the API server.

Two departures from upstream, both forced by what the module proxy serves (see
``docs/kubeedge-build.md``): beehive is rebuilt from v1.7.0 plus edgebench's compatibility
patch, and ``hollowedge`` replaces edgemark, which panics at start and hard-codes its paths.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import yaml
from kubernetes import client, utils
from kubernetes.client.exceptions import ApiException

from bench.build import tools
from bench.distros.local.cluster import LocalCluster
from bench.distros.local.controlplane import KUBELET_FAST
from bench.errors import ClusterError
from bench.model import Capability, ClusterSpec, EdgeNode, Timings
from bench.procs import Supervised, free_port, port_open, wait_for

NAMESPACE = "kubeedge"
CLOUDCORE_START_TIMEOUT = 90  # cloudcore sleeps a random 0-9 s before it serves


class KubeEdgeLocal(LocalCluster):
    name = "kubeedge"
    AGENT_BINARIES: tuple[str, ...] = ("cloudcore", "hollowedge")
    # edged is a kubelet: node status every 10 s, a Lease of 40 s renewed every 10 s.
    FAST_TIMINGS: ClassVar[Timings] = KUBELET_FAST
    #: edgehub's websocket heartbeat: a ping every 15 s; it redials after two are missed
    #: (KubeEdge v1.20 edgecore defaults, edgeHub.heartbeat = 15)
    AGENT_SILENT_LINK_S: ClassVar[float] = 2 * 15.0
    CAPABILITIES = LocalCluster.CAPABILITIES | {Capability.EDGE_POD_VIEW}
    LACKS: ClassVar[Mapping[Capability, str]] = {
        **LocalCluster.LACKS,
        Capability.EDGE_VOLUME_VIEW: "hollowedge's fake runtime never mounts volumes",
    }

    def __init__(self, spec: ClusterSpec) -> None:
        super().__init__(spec)
        # cloudhub's websocket and https ports, chosen once per cluster
        self.ws_port, self.https_port = free_port(), free_port()

    @property
    def version(self) -> str:
        return tools.BINARIES["cloudcore"].version

    def cloudcore_config(self) -> dict[str, Any]:
        state = self.state_dir / "cloudcore"
        hub = {"address": "127.0.0.1"}
        return {
            "apiVersion": "cloudcore.config.kubeedge.io/v1alpha1",
            "kind": "CloudCore",
            "kubeAPIConfig": {"kubeConfig": str(self.kubeconfig), "qps": 100, "burst": 200},
            "commonConfig": {"monitorServer": {"bindAddress": f"127.0.0.1:{free_port()}"}},
            "modules": {
                "cloudHub": {
                    "enable": True,
                    # the certificate's IP SANs: loopback and each node namespace's host side
                    "advertiseAddress": [
                        "127.0.0.1",
                        *(ns.host_addr for ns in self.namespaces.values()),
                    ],
                    "dnsNames": ["localhost"],
                    "nodeLimit": 1000,
                    # absent files: cloudcore makes its CA and certificate (kept in secrets)
                    "tlsCAFile": str(state / "ca" / "rootCA.crt"),
                    "tlsCAKeyFile": str(state / "ca" / "rootCA.key"),
                    "tlsCertFile": str(state / "certs" / "server.crt"),
                    "tlsPrivateKeyFile": str(state / "certs" / "server.key"),
                    "websocket": {"enable": True, **hub, "port": self.ws_port},
                    "https": {"enable": True, **hub, "port": self.https_port},
                    "quic": {"enable": False, **hub, "port": free_port()},
                    "unixsocket": {"enable": False, "address": f"unix://{state}/kubeedge.sock"},
                },
                "cloudStream": {"enable": False},
                "dynamicController": {"enable": False},
                "router": {"enable": False},
                # never touch the host's iptables
                "iptablesManager": {"enable": False, "mode": "external"},
            },
        }

    def start_cloud(self) -> None:
        crds = tools.TOOLSETS["kubeedge"].bin_dir.parent / "crds"
        for path in sorted(crds.rglob("*.yaml")):
            try:
                utils.create_from_yaml(self.api, str(path))
            except utils.FailToCreateError as exc:
                if any(getattr(e, "status", None) != 409 for e in exc.api_exceptions):
                    raise
        config = self.state_dir / "cloudcore" / "cloudcore.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(yaml.safe_dump(self.cloudcore_config(), sort_keys=False))
        proc = Supervised(
            "cloudcore",
            [tools.tool_path("cloudcore"), f"--config={config}", "-v=2"],
            self.state_dir / "logs" / "cloudcore.log",
            detached=self.spec.detached,
        )
        self.cloud.append(proc.start())
        wait_for(
            lambda: (
                port_open("127.0.0.1", self.ws_port)
                and port_open("127.0.0.1", self.https_port)
                and self._token() is not None
            ),
            CLOUDCORE_START_TIMEOUT,
            "cloudcore to serve cloudhub and publish its token",
            interval=0.2,
            alive=proc.check_alive,
        )

    def _token(self) -> str | None:
        try:
            secret = client.CoreV1Api(self.api).read_namespaced_secret("tokensecret", NAMESPACE)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        data = (secret.data or {}).get("tokendata")
        return base64.b64decode(data).decode() if data else None

    def probe_link(self, node: str, path: str = "/version") -> tuple[float, int]:
        """One fresh HTTPS request to cloudhub's https port through the node's link, from
        where the node's packets are.

        This times the link, it trusts nothing and sends no credentials, so the certificate
        (cloudcore's own CA) is not verified; any HTTP status counts as an answer.
        """
        https = self.link_upstreams()[1]
        answer = self._fetch(node, f"https://{self.node(node).dial_for(https)}{path}")
        return answer.seconds, len(answer.body.encode())

    def link_upstreams(self) -> list[str]:
        return [f"127.0.0.1:{self.ws_port}", f"127.0.0.1:{self.https_port}"]

    def start_agent(self, node: EdgeNode) -> Supervised:
        token = self._token()
        if token is None:
            raise ClusterError("cloudcore has not published its join token")
        data_dir = self.state_dir / "nodes" / node.name
        data_dir.mkdir(parents=True, exist_ok=True)
        ro_port = self.read_only_ports.setdefault(node.name, free_port())
        ws, https = self.link_upstreams()
        agent = Supervised(
            f"hollowedge-{node.name}",
            self.agent_argv(
                node.name,
                [
                    tools.tool_path("hollowedge"),
                    f"--name={node.name}",
                    f"--data-dir={data_dir}",
                    f"--token={token}",
                    f"--websocket-server={node.dial_for(ws)}",
                    f"--http-server=https://{node.dial_for(https)}",
                    f"--readonly-port={ro_port}",
                    f"--node-ip={self.node_ip(node.name)}",
                ],
            ),
            self.agent_log(node.name),
            env={**os.environ, "TMPDIR": str(data_dir)},
            detached=self.spec.detached,
        )
        return agent.start()
