"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager
and kube-scheduler, built from their Go modules and supervised by the harness.

kwokctl's binary runtime could start these too, but it runs one KWOK controller for all nodes
and fetches its own binaries; edgebench needs one agent per edge node, each behind its own
link, and binaries it built itself, so it supervises the processes directly.
"""

from __future__ import annotations

import re
import ssl
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from bench.build import tools
from bench.distros.local import pki
from bench.errors import ClusterError
from bench.model import ClusterSpec, Profile, Timings
from bench.procs import Supervised, free_port, port_open, wait_for

# The `fast` profile: short grace periods and tolerations so that CI runs in minutes. Lease and
# status periods are the edge agent's; the others are the control plane's.
FAST = Timings(
    node_monitor_grace_period_s=8,
    node_monitor_period_s=1,
    node_status_update_period_s=2,
    node_lease_duration_s=8,
    unreachable_toleration_s=10,
    not_ready_toleration_s=10,
)
# The `fast` profile for kubelet-based agents (kubemark, KubeEdge's edged), whose node status
# period (10 s) and Lease (40 s, renewed every 10 s) are fixed: the grace period must stay above
# one renewal interval, or healthy nodes would flap.
KUBELET_FAST = Timings(
    node_monitor_grace_period_s=16,
    node_monitor_period_s=1,
    node_status_update_period_s=10,
    node_lease_duration_s=40,
    unreachable_toleration_s=10,
    not_ready_toleration_s=10,
)
# Kubelet's own defaults for the agent side; the control plane's values are read back from the
# processes' logged flags once they run (they change between Kubernetes releases).
AGENT_DEFAULTS = {"node_status_update_period_s": 10.0, "node_lease_duration_s": 40.0}

# The node lifecycle controller's zone rule: when more than ``unhealthy-zone-threshold`` of a
# zone's nodes (and more than two) are not Ready, evictions in that zone slow to the secondary
# rate, or stop in a cluster of at most ``large-cluster-size-threshold`` nodes; when every node
# of every zone is not Ready, they stop. Read back into Timings (flag -> field).
ZONE_RULE_FLAGS = {
    "unhealthy-zone-threshold": "unhealthy_zone_threshold",
    "large-cluster-size-threshold": "large_cluster_size_threshold",
    "node-eviction-rate": "node_eviction_rate",
    "secondary-node-eviction-rate": "secondary_node_eviction_rate",
}

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration such as ``50s``, ``1m0s`` or ``500ms``."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a Go duration: {text!r}")
    return sum(float(n) * _UNIT[u] for n, u in parts)


def logged_flags(log: Path) -> dict[str, str]:
    """The ``FLAG: --name="value"`` lines a Kubernetes component logs at start (-v=1)."""
    flags: dict[str, str] = {}
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return flags
    for name, value in re.findall(r'FLAG: --([\w-]+)="([^"]*)"', text):
        flags[name] = value
    return flags


def write_kubeconfig(
    path: Path, server: str, ca: Path, client: pki.CertPair, name: str = "edgebench"
) -> Path:
    """A kubeconfig that authenticates with a client certificate; only file paths go in it."""
    user = {"client-certificate": str(client.cert), "client-key": str(client.key)}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": "edgebench", "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "edgebench"}}],
        "current-context": name,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class ControlPlaneAddresses:
    etcd_port: int
    etcd_peer_port: int
    apiserver_port: int

    @property
    def apiserver(self) -> str:
        return f"127.0.0.1:{self.apiserver_port}"


class LocalControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler on 127.0.0.1."""

    BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")

    def __init__(
        self,
        spec: ClusterSpec,
        state_dir: Path,
        extra_sans: tuple[str, ...] = (),
        fast: Timings = FAST,
    ):
        self.spec = spec
        self.fast = fast
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self.pki_dir = state_dir / "pki"
        self.extra_sans = extra_sans
        self.addresses = ControlPlaneAddresses(free_port(), free_port(), free_port())
        self.processes: list[Supervised] = []
        self._timings: Timings | None = None
        self.ca: pki.CertificateAuthority | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def ca_cert(self) -> Path:
        return self.pki_dir / "ca.crt"

    @property
    def server(self) -> str:
        return f"https://{self.addresses.apiserver}"

    @property
    def timings(self) -> Timings:
        if self._timings is None:
            raise ClusterError("the control plane has not been started")
        return self._timings

    def requested_timings(self, profile: Profile) -> Timings | None:
        return self.fast if profile == "fast" else None

    def _start(self, name: str, argv: list[str]) -> Supervised:
        proc = Supervised(name, argv, self.log_dir / f"{name}.log", detached=self.spec.detached)
        self.processes.append(proc.start())
        return proc

    def start(self) -> None:
        bins = {b: str(tools.tool_path(b)) for b in self.BINARIES}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ca = pki.CertificateAuthority(self.pki_dir)
        serving = self.ca.issue(
            "kube-apiserver",
            hosts=("127.0.0.1", "localhost", "kubernetes", "kubernetes.default", *self.extra_sans),
        )
        sa = pki.service_account_keys(self.pki_dir)
        admin = self.ca.issue(
            "edgebench-admin", hosts=(), client=True, organization="system:masters"
        )
        write_kubeconfig(self.kubeconfig, self.server, self.ca_cert, admin)
        a = self.addresses
        fast = self.requested_timings(self.spec.profile)

        etcd = self._start(
            "etcd",
            [
                bins["etcd"],
                "--name=edgebench",
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{a.etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{a.etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{a.etcd_peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{a.etcd_peer_port}",
                f"--initial-cluster=edgebench=http://127.0.0.1:{a.etcd_peer_port}",
                "--unsafe-no-fsync",  # a throw-away store; durability is not under test
                "--log-level=warn",
            ],
        )
        wait_for(
            lambda: port_open("127.0.0.1", a.etcd_port),
            30,
            "etcd to listen",
            alive=etcd.check_alive,
        )

        apiserver_args = [
            bins["kube-apiserver"],
            f"--etcd-servers=http://127.0.0.1:{a.etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",  # loopback is not a valid Endpoints address
            f"--secure-port={a.apiserver_port}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={self.ca_cert}",
            "--authorization-mode=AlwaysAllow",  # clients authenticate with certificates
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--enable-priority-and-fairness=false",
            f"--cert-dir={self.pki_dir / 'apiserver'}",
            "-v=1",
        ]
        if fast:
            apiserver_args += [
                f"--default-unreachable-toleration-seconds={int(fast.unreachable_toleration_s)}",
                f"--default-not-ready-toleration-seconds={int(fast.not_ready_toleration_s)}",
            ]
        apiserver = self._start("kube-apiserver", apiserver_args)
        wait_for(
            self._apiserver_ready,
            90,
            "kube-apiserver /readyz",
            interval=0.2,
            alive=apiserver.check_alive,
        )

        kcm_args = [
            bins["kube-controller-manager"],
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--secure-port=0",
            "--use-service-account-credentials=false",
            f"--service-account-private-key-file={sa.key}",
            f"--root-ca-file={self.ca_cert}",
            "-v=1",
        ]
        if fast:
            kcm_args += [
                f"--node-monitor-grace-period={fast.node_monitor_grace_period_s:g}s",
                f"--node-monitor-period={fast.node_monitor_period_s:g}s",
            ]
        kcm = self._start("kube-controller-manager", kcm_args)
        self._start(
            "kube-scheduler",
            [
                bins["kube-scheduler"],
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
            ],
        )
        # It logs its flags one line at a time: wait for the ones read back below.
        wait_for(
            lambda: (
                {"node-monitor-grace-period", "node-monitor-period", *ZONE_RULE_FLAGS}
                <= logged_flags(kcm.log_path).keys()
            ),
            30,
            "kube-controller-manager to log its node lifecycle settings",
            alive=kcm.check_alive,
        )
        self._timings = self._effective_timings(fast)
        wait_for(
            self._controllers_running,
            30,
            "kube-controller-manager to create the default service account",
            interval=0.2,
            alive=self.check_alive,
        )

    def client_cert(self, name: str, organization: str) -> pki.CertPair:
        """A client certificate signed by the cluster's CA (e.g. for one edge node)."""
        if self.ca is None:
            raise ClusterError("the control plane has not been started")
        return self.ca.issue(name, hosts=(), client=True, organization=organization)

    def ssl_context(self) -> ssl.SSLContext:
        """TLS settings of an admin client: the cluster CA and the admin's certificate."""
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        ctx.load_cert_chain(
            self.pki_dir / "edgebench-admin.crt", self.pki_dir / "edgebench-admin.key"
        )
        return ctx

    def get(self, path: str, address: str | None = None, timeout: float = 2) -> bytes:
        """GET ``path`` from the API server, directly or through ``address`` (a link)."""
        url = f"https://{address or self.addresses.apiserver}{path}"
        with urllib.request.urlopen(url, context=self.ssl_context(), timeout=timeout) as resp:
            return bytes(resp.read())

    def _get_ok(self, path: str) -> bool:
        """True when GET ``path`` on the API server answers 200 (as the admin)."""
        self.get(path)
        return True

    def _apiserver_ready(self) -> bool:
        return self._get_ok("/readyz")

    def _controllers_running(self) -> bool:
        return self._get_ok("/api/v1/namespaces/default/serviceaccounts/default")

    def _effective_timings(self, fast: Timings | None) -> Timings:
        """The values the running processes report, falling back to what was asked."""
        kcm = logged_flags(self.log_dir / "kube-controller-manager.log")
        api = logged_flags(self.log_dir / "kube-apiserver.log")
        base = fast or Timings(
            0,
            0,
            AGENT_DEFAULTS["node_status_update_period_s"],
            AGENT_DEFAULTS["node_lease_duration_s"],
            0,
            0,
        )
        try:
            return replace(
                base,
                node_monitor_grace_period_s=parse_go_duration(kcm["node-monitor-grace-period"]),
                node_monitor_period_s=parse_go_duration(kcm["node-monitor-period"]),
                unreachable_toleration_s=float(api["default-unreachable-toleration-seconds"]),
                not_ready_toleration_s=float(api["default-not-ready-toleration-seconds"]),
                **{field: float(kcm[flag]) for flag, field in ZONE_RULE_FLAGS.items()},
            )
        except (KeyError, ValueError) as exc:
            raise ClusterError(
                f"could not read the effective node lifecycle settings from the logs in "
                f"{self.log_dir}: {exc}"
            ) from None

    def check_alive(self) -> None:
        for proc in self.processes:
            proc.check_alive()

    def stop(self) -> None:
        """Stop in reverse order; never raises."""
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()

    def pids(self) -> dict[str, int]:
        return {p.name: p.pid for p in self.processes if p.pid is not None}
