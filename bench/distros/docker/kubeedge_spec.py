"""The containers of upstream KubeEdge on Docker, as pure functions of the cluster.

What KubeEdge's own tooling does, taken as the recipe (keink, "KubeEdge in kind", and
``hack/local-up-kubeedge.sh``): cloudcore from its release image, with its config file, the
cloudhub ports 10000 (websocket), 10002 (https: certificates for a token) and 10003/10004
(cloudstream, tunnel); each edge node a kind node container (systemd, containerd, runc, CNI
plugins) whose kubelet is switched off and whose ``edgecore`` is configured for the remote
runtime ``unix:///run/containerd/containerd.sock`` with the systemd cgroup driver, MQTT off,
and the cloud's token. The edgecore binary is the release's own, copied from
``kubeedge/installation-package`` into a locally built edge image (:func:`edge_dockerfile`);
nothing is pulled during a run.

The link: cloudcore gets its own address on the cluster network and its certificate names it
(``advertiseAddress``); each edge node is told that address, and a DNAT rule in its network
namespace sends its connections to cloudhub's websocket and https ports to that node's own
Toxiproxy listeners (the same idea as k3s's, :mod:`bench.distros.docker.k3s_spec`): edgehub
dials what it likes, its packets go through its link, and TLS still sees cloudcore's address.
edgecore starts only once the rules are in (:data:`STEERED_MARKER` on the tmpfs ``/run``).
"""

from __future__ import annotations

import json
from typing import Any

from bench.build import versions
from bench.distros.docker import labels as lbl
from bench.distros.docker.spec import ContainerSpec
from bench.model import ClusterSpec, Timings

CLOUDCORE_IMAGE = f"kubeedge/cloudcore:{versions.KUBEEDGE}"
INSTALLATION_IMAGE = f"kubeedge/installation-package:{versions.KUBEEDGE}"
NODE_BASE_IMAGE = f"kindest/node:{versions.KIND_NODE}"
#: the images a user supplies (nothing is pulled during a run)
UPSTREAM_IMAGES = (CLOUDCORE_IMAGE, INSTALLATION_IMAGE, NODE_BASE_IMAGE)
#: built here from the two above (:func:`edge_dockerfile`); no registry involved
EDGE_IMAGE = f"edgebench/kubeedge-edge:{versions.KUBEEDGE}-kind-{versions.KIND_NODE}"

WEBSOCKET_PORT = 10000
QUIC_PORT = 10001  # off
HTTPS_PORT = 10002
STREAM_PORT = 10003  # cloudstream (kubectl logs/exec to edge pods): off
TUNNEL_PORT = 10004  # edgestream's tunnel: off
CLOUDCORE_PORTS = (WEBSOCKET_PORT, QUIC_PORT, HTTPS_PORT, STREAM_PORT, TUNNEL_PORT)
#: the ports a node's link carries (the ones its DNAT rules steer)
STEERED_PORTS = (WEBSOCKET_PORT, HTTPS_PORT)

CONFIG_DIR = "/etc/kubeedge/config"
CLOUDCORE_CONFIG = f"{CONFIG_DIR}/cloudcore.yaml"
CLOUDCORE_KUBECONFIG = f"{CONFIG_DIR}/kubeconfig"
EDGECORE_CONFIG = f"{CONFIG_DIR}/edgecore.yaml"
CNI_CONFIG = "/etc/cni/net.d/10-edgebench.conflist"
CONTAINERD_SOCKET = "unix:///run/containerd/containerd.sock"
STEERED_MARKER = "/run/edgebench-steered"
EDGE_LABEL_KEY, EDGE_LABEL_VALUE = "edgebench.io/edge", "true"
#: a kind node: systemd as init wants tmpfs /run and /tmp; containerd's overlayfs snapshots
#: want /var off the container's own overlay (a volume); kernel modules read-only
EDGE_TMPFS = {"/run": "rw", "/tmp": "rw"}
#: the systemd unit of edgecore in the edge image: waits for its DNAT rules, then runs
EDGECORE_UNIT = f"""\
[Unit]
Description=KubeEdge edgecore (edgebench)
After=containerd.service
Requires=containerd.service

[Service]
Environment=CHECK_EDGECORE_ENVIRONMENT=false
ExecStartPre=/bin/sh -c 'until [ -e {STEERED_MARKER} ]; do sleep 0.2; done'
ExecStart=/usr/local/bin/edgecore --config={EDGECORE_CONFIG} --v=2
Restart=always
RestartSec=2
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
"""


def pull_hint() -> str:
    """What to run to have the upstream recipe."""
    return "; ".join(f"docker pull {image}" for image in UPSTREAM_IMAGES)


def cloudcore_name(cluster: str) -> str:
    return f"edgebench-{cluster}-cloudcore"


def edge_name(cluster: str, node: str) -> str:
    return f"edgebench-{cluster}-{node}"


def edge_volume(cluster: str, node: str) -> str:
    """The named (labelled) volume of an edge node's ``/var``."""
    return f"edgebench-{cluster}-{node}-var"


def edge_dockerfile() -> str:
    """The edge image: a kind node with the release's edgecore and its unit, the kubelet
    masked (edged is edgecore's kubelet; keink stops kind's own the same way)."""
    return (
        f"FROM {NODE_BASE_IMAGE}\n"
        f"COPY --from={INSTALLATION_IMAGE} /usr/local/bin/edgecore /usr/local/bin/edgecore\n"
        "COPY edgecore.service /etc/systemd/system/edgecore.service\n"
        "RUN ln -sf /dev/null /etc/systemd/system/kubelet.service \\\n"
        " && ln -sf /etc/systemd/system/edgecore.service "
        "/etc/systemd/system/multi-user.target.wants/edgecore.service\n"
        f'LABEL io.edgebench.kubeedge="{versions.KUBEEDGE}" '
        f'io.edgebench.kind-node="{versions.KIND_NODE}"\n'
    )


def cloudcore_config(cloud_ip: str) -> dict[str, Any]:
    """cloudcore's config: cloudhub on the standard ports of its own address (which its
    certificate names), the API server through :data:`CLOUDCORE_KUBECONFIG`; modules the
    scenarios do not measure are off, and so is the iptables manager (this machine's rules
    are not cloudcore's to touch). It has no node lifecycle settings: the controller
    manager's apply, as for every distro."""
    return {
        "apiVersion": "cloudcore.config.kubeedge.io/v1alpha1",
        "kind": "CloudCore",
        "kubeAPIConfig": {"kubeConfig": CLOUDCORE_KUBECONFIG, "qps": 100, "burst": 200},
        "modules": {
            "cloudHub": {
                "enable": True,
                "advertiseAddress": [cloud_ip],
                "nodeLimit": 1000,
                "websocket": {"enable": True, "address": "0.0.0.0", "port": WEBSOCKET_PORT},
                "https": {"enable": True, "address": "0.0.0.0", "port": HTTPS_PORT},
                "quic": {"enable": False, "address": "0.0.0.0", "port": QUIC_PORT},
            },
            "cloudStream": {
                "enable": False,
                "streamPort": STREAM_PORT,
                "tunnelPort": TUNNEL_PORT,
            },
            "dynamicController": {"enable": False},
            "router": {"enable": False},
            "iptablesManager": {"enable": False, "mode": "external"},
        },
    }


def cloudcore_spec(
    spec: ClusterSpec, run_id: str, network: str, ip: str, config_dir: str, pki_dir: str
) -> ContainerSpec:
    """cloudcore's container: the release image's ``cloudcore``, its config and kubeconfig
    from ``config_dir`` on this machine and the client certificate the kubeconfig names (at
    the same path), read-only; it makes its own CA and server certificate (under
    ``/etc/kubeedge``, kept in the ``kubeedge`` namespace's secrets) and the join token. No
    privilege: its iptables manager is off."""
    return ContainerSpec(
        name=cloudcore_name(spec.name),
        image=CLOUDCORE_IMAGE,
        entrypoint=("cloudcore",),
        command=(f"--config={CLOUDCORE_CONFIG}", "--v=2"),
        labels=lbl.labels(spec.name, run_id, "cloudcore", detached=spec.detached),
        network=network,
        ip=ip,
        binds={config_dir: (CONFIG_DIR, "ro"), pki_dir: (pki_dir, "ro")},
        environment={"KUBECONFIG": CLOUDCORE_KUBECONFIG},
    )


def edgecore_config(
    node: str, ip: str, cloud_ip: str, token: str, timings: Timings | None
) -> dict[str, Any]:
    """One node's edgecore config (v1alpha2, applied over edgecore's defaults): edgehub to
    cloudcore's own address (steered to the node's link), edged on containerd."""
    edged: dict[str, Any] = {
        "enable": True,
        "hostnameOverride": node,
        "nodeIP": ip,
        "nodeLabels": {EDGE_LABEL_KEY: EDGE_LABEL_VALUE},
        # the runtime endpoints are kubelet configuration (TailoredKubeletConfiguration)
        "tailoredKubeletConfig": {
            "containerRuntimeEndpoint": CONTAINERD_SOCKET,
            "imageServiceEndpoint": CONTAINERD_SOCKET,
            "cgroupDriver": "systemd",  # kind's containerd runs runc with systemd cgroups
            "resolvConf": "/etc/resolv.conf",
            "registerNode": True,
        },
    }
    if timings is not None:
        edged["tailoredKubeletConfig"]["nodeStatusUpdateFrequency"] = (
            f"{timings.node_status_update_period_s:g}s"
        )
    return {
        "apiVersion": "edgecore.config.kubeedge.io/v1alpha2",
        "kind": "EdgeCore",
        "database": {"dataSource": "/var/lib/kubeedge/edgecore.db"},
        "modules": {
            "edgeHub": {
                "enable": True,
                "token": token,
                "httpServer": f"https://{cloud_ip}:{HTTPS_PORT}",
                "websocket": {"enable": True, "server": f"{cloud_ip}:{WEBSOCKET_PORT}"},
                "quic": {"enable": False},
            },
            "edged": edged,
            "eventBus": {"enable": False, "mqttMode": 0},
            "edgeStream": {"enable": False},
            "metaManager": {"metaServer": {"enable": False}},
            "serviceBus": {"enable": False},
            "deviceTwin": {"enable": False},
        },
    }


def cni_conflist(pod_subnet: str) -> str:
    """A node-local CNI network for the edge's pods (kind's own, kindnet, is a DaemonSet that
    edge nodes do not run; KubeEdge's local-up writes a plain one the same way)."""
    return json.dumps(
        {
            "cniVersion": "0.3.1",
            "name": "edgebench",
            "plugins": [
                {
                    "type": "ptp",
                    "ipMasq": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": pod_subnet}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    )


def pod_subnet(index: int) -> str:
    """Edge node ``index``'s pod range (nothing routes between nodes: edge pods are local)."""
    return f"10.244.{index}.0/24"


def edge_spec(
    spec: ClusterSpec, run_id: str, node: str, network: str, ip: str, node_dir: str
) -> ContainerSpec:
    """One edge node: a kind node (its own entrypoint and systemd) running containerd and
    edgecore; ``node_dir`` on this machine holds its ``edgecore.yaml`` and CNI config."""
    return ContainerSpec(
        name=edge_name(spec.name, node),
        image=EDGE_IMAGE,
        command=(),  # the image's: kind's entrypoint, then systemd
        labels={
            **lbl.labels(spec.name, run_id, "agent", detached=spec.detached),
            f"{lbl.PREFIX}.node": node,
        },
        network=network,
        ip=ip,
        hostname=node,
        tmpfs=EDGE_TMPFS,
        binds={
            "/lib/modules": ("/lib/modules", "ro"),
            # read-write: once it has its certificate, edgecore rewrites its config file
            # without the token (os.WriteFile, so a bind-mounted file will do)
            f"{node_dir}/edgecore.yaml": (EDGECORE_CONFIG, "rw"),
            f"{node_dir}/cni.conflist": (CNI_CONFIG, "ro"),
        },
        volumes={edge_volume(spec.name, node): "/var"},
    )


def dnat_rules(cloud_ip: str, proxies: dict[int, str]) -> list[list[str]]:
    """The iptables commands, run inside one edge node's namespace, that send its
    connections to each of cloudcore's ``port`` to ``proxies[port]`` (its link's listener)."""
    return [
        [
            "iptables", "-w", "-t", "nat", "-A", "OUTPUT",
            "-d", cloud_ip, "-p", "tcp", "--dport", str(port),
            "-j", "DNAT", "--to-destination", proxies[port],
        ]
        for port in STEERED_PORTS
    ]  # fmt: skip


def sandbox_image(containerd_config: str) -> str | None:
    """The pause image a kind node's containerd preloads (``sandbox_image = "..."`` in
    ``containerd config dump``): the scenarios' workload image, so nothing is pulled."""
    for line in containerd_config.splitlines():
        key, _, value = line.strip().partition("=")
        if key.strip() == "sandbox_image":
            return value.strip().strip('"') or None
    return None
