"""``--distro=k3s`` (default provider ``docker``): k3s from the ``rancher/k3s`` image, a
server and one agent container per edge node on the cluster's own network.

Each node's link is a Toxiproxy listener on this machine's address on that network; a DNAT
rule inside the agent's namespace steers every connection to ``server:6443`` through it (see
:mod:`bench.distros.docker.k3s_spec` for why an address in ``K3S_URL`` is not enough). Edge
views come from ``k3s crictl pods`` inside the agent, through a ``docker://`` host.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from bench import kube
from bench.build import tools
from bench.distros.base import Distro
from bench.distros.docker import crictl, engine, k3s_spec, network, reaper, steering
from bench.distros.docker.nsrunner import ContainerNetns
from bench.distros.docker.spec import Security, host_address
from bench.distros.links import ToxiproxyLinks
from bench.distros.local.cluster import ours, stop_recorded
from bench.distros.local.controlplane import KUBELET_FAST
from bench.distros.readiness import progress, wait_all_ready
from bench.distros.state import StateDir
from bench.errors import ClusterError, ClusterTimeoutError, EnvironmentUnavailableError
from bench.faults import FaultKind
from bench.faults.kernel import Endpoint, KernelLink
from bench.model import Capability, ClusterSpec, EdgeNode, Timings

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container
    from kubernetes.client import ApiClient

#: what to tell a user without the image
PULL_HINT = (
    f"docker pull {k3s_spec.IMAGE} (or run k3s on your own machines: "
    "--provider=remote --lab lab.yaml)"
)
SERVER_READY_TIMEOUT_S = 180.0


def run_id() -> str:
    """The id labelling this bring-up's resources: the pytest run's when it set one."""
    return os.environ.get("EDGEBENCH_RUN_ID") or uuid.uuid4().hex[:12]


def check_host_tools() -> None:
    for binary in ("nsenter", "iptables"):
        if shutil.which(binary) is None:
            raise EnvironmentUnavailableError(
                f"the docker provider steers each node's traffic with {binary}, which is not "
                "installed: apt-get install util-linux iptables"
            )


class K3sDocker(Distro):
    name = "k3s"
    provider = "docker"
    CAPABILITIES = frozenset(
        {Capability.AGENT_RESTART, Capability.REBOOT, Capability.EDGE_POD_VIEW}
    )
    LACKS: ClassVar[Mapping[Capability, str]] = {
        Capability.REAL_RUNTIME: "an agent restart restarts the whole agent container (a "
        "reboot); restarting k3s alone inside it is not implemented",
        Capability.EDGE_VOLUME_VIEW: "not implemented for k3s in containers",
        Capability.LINK_PROBE: "not implemented for k3s in containers",
    }

    def __init__(self, spec: ClusterSpec) -> None:
        super().__init__(spec)
        self.state = StateDir(spec.name, spec.state_root, is_ours=ours)
        self.links = ToxiproxyLinks(self.state.path / "logs", detached=spec.detached)
        self.run_id = run_id()
        self.token = secrets.token_hex(16)
        self._client: docker.DockerClient | None = None
        self._server: Container | None = None
        self._agents: dict[str, Container] = {}
        self._nodes: list[EdgeNode] = []
        self._server_ip = ""
        self._timings: Timings | None = None
        self._api: ApiClient | None = None
        self.security: Security | None = None

    # --- availability -------------------------------------------------------------------

    @classmethod
    def check_available(cls) -> None:
        client = engine.connect()  # no engine / no permission
        try:
            engine.require_image(client, k3s_spec.IMAGE, PULL_HINT)
        finally:
            client.close()
        check_host_tools()
        tools.tool_path("toxiproxy-server")

    @classmethod
    def link_faults(cls, spec: ClusterSpec) -> frozenset[FaultKind]:
        return ToxiproxyLinks.faults()

    # --- what suites use ----------------------------------------------------------------

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = engine.connect()
        return self._client

    @property
    def kubeconfig(self) -> Path:
        return self.state.path / "kubeconfig"

    @property
    def api(self) -> ApiClient:
        if self._api is None:
            self._api = kube.api_client(self.kubeconfig)
        return self._api

    @property
    def edge_nodes(self) -> list[EdgeNode]:
        return list(self._nodes)

    @property
    def timings(self) -> Timings:
        if self._timings is None:
            raise ClusterError("the k3s cluster is not up")
        return self._timings

    @property
    def version(self) -> str:
        return k3s_spec.IMAGE.split(":", 1)[1]

    def tool_versions(self) -> dict[str, str]:
        versions = {"rancher/k3s": self.version, **tools.tool_versions(["toxiproxy-server"])}
        if self.security is not None:
            versions["docker-security"] = self.security.name
        return versions

    def edge_pods(self, node: str) -> dict[str, str]:
        """Pod sandboxes containerd in the agent container holds (``k3s crictl pods``)."""
        return crictl.edge_pods(self._agents[node].name, "k3s crictl")

    def kernel_link(self, node: str, **kwargs: Any) -> KernelLink:
        """A kernel link (iptables/tc) inside ``node``'s agent namespace, scoped to its
        Toxiproxy listener (where the DNAT rule sends the server's traffic)."""
        proxy = self.node(node).dial_for(f"{self._server_ip}:{k3s_spec.API_PORT}")
        host, _, port = proxy.rpartition(":")
        endpoint = Endpoint(host, (int(port),))
        run = ContainerNetns(self._agents[node])
        return KernelLink(node, run, [endpoint], "eth0", **kwargs)

    def restart_agent(self, node: str) -> None:
        """Restart the node's container (a reboot with its on-disk state); the new namespace
        gets its DNAT rule before k3s starts again."""
        container = self._agents[node]
        container.restart(timeout=10)
        self._steer(self.node(node), container)

    # --- bring-up -----------------------------------------------------------------------

    def up(self) -> None:
        self.state.acquire()
        try:
            self._up()
        except BaseException as exc:
            exc.add_note(f"k3s server log: docker logs {k3s_spec.server_name(self.spec.name)}")
            self.down()
            raise

    def _requested(self) -> Timings | None:
        return KUBELET_FAST if self.spec.profile == "fast" else None

    def _up(self) -> None:
        started = time.monotonic()
        self.state.clear()
        self._write_state()
        reaper.reap(self.client)  # what killed sessions left behind
        net = network.create(self.client, self.spec.name, self.run_id, self.spec.detached)
        subnet, gateway = network.subnet_of(net)
        self._write_state()
        self._server_ip = host_address(subnet, 2)
        server = k3s_spec.server_spec(
            self.spec, self.run_id, net.name, self._server_ip, self.token, self._requested()
        )
        self._server, self.security = engine.run(self.client, server)
        progress(f"k3s server container started ({self.security.name})")
        log = self._wait_server()
        self._timings = k3s_spec.effective_timings(log, self._requested())
        self._write_kubeconfig()
        progress(f"k3s server ready (+{time.monotonic() - started:.1f}s)")
        self.links.listen_host = gateway
        self.links.start()
        self._write_state()
        upstream = f"{self._server_ip}:{k3s_spec.API_PORT}"
        names = [f"edge-{i}" for i in range(self.spec.edge_nodes)]
        with self.observer(namespace="kube-system").running() as observer:
            for i, name in enumerate(names):
                node = self.links.make(name, [upstream])
                self._nodes.append(node)
                agent = k3s_spec.agent_spec(
                    self.spec,
                    self.run_id,
                    name,
                    net.name,
                    host_address(subnet, 10 + i),
                    self._server_ip,
                    self.token,
                    self._requested(),
                )
                container, _ = engine.run(self.client, agent, modes=(self.security,))
                self._agents[name] = container
                self._steer(node, container)
            self._write_state()
            wait_all_ready(
                observer, names, timeout=120 + 5 * len(names), alive=self.check_alive,
                started_mono=started,
            )  # fmt: skip

    def _wait_server(self) -> str:
        assert self._server is not None
        deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self._server.reload()
            log = self._server.logs().decode(errors="replace")
            if self._server.status != "running":
                raise ClusterError(f"the k3s server exited: {log[-1500:]}")
            if k3s_spec.READY_LINE in log and k3s_spec.effective_timings(log, None) is not None:
                return str(log)
            time.sleep(1)
        raise ClusterTimeoutError(
            f"the k3s server did not log {k3s_spec.READY_LINE!r} within "
            f"{SERVER_READY_TIMEOUT_S:.0f}s"
        )

    def _write_kubeconfig(self) -> None:
        assert self._server is not None
        res = self._server.exec_run(["cat", k3s_spec.KUBECONFIG])
        if res.exit_code != 0:
            raise ClusterError(f"cannot read {k3s_spec.KUBECONFIG} in the server: {res.output!r}")
        text = k3s_spec.rewrite_kubeconfig(res.output.decode(), self._server_ip)
        self.kubeconfig.write_text(text)

    def _steer(self, node: EdgeNode, container: Container) -> None:
        """Put the DNAT rule of ``node`` into the container's namespace, then let k3s start."""
        proxy = node.dial_for(f"{self._server_ip}:{k3s_spec.API_PORT}")
        rules = k3s_spec.dnat_rules(self._server_ip, proxy)
        steering.steer(container, rules, k3s_spec.STEERED_MARKER, node.name)

    def check_alive(self) -> None:
        for container in [self._server, *self._agents.values()]:
            if container is None:
                continue
            container.reload()
            if container.status != "running":
                tail = container.logs(tail=20).decode(errors="replace")
                raise ClusterError(f"container {container.name} is {container.status}:\n{tail}")

    def _write_state(self) -> None:
        pids: dict[str, Any] = {}
        if self.links.pid is not None:
            pids["toxiproxy-server"] = self.links.pid
        self.state.write(
            {
                "name": self.spec.name,
                "distro": self.name,
                "provider": self.provider,
                "profile": self.spec.profile,
                "kubeconfig": str(self.kubeconfig),
                "toxiproxy": self.links.url,
                "run_id": self.run_id,
                "network": network.network_name(self.spec.name),
                "containers": [c.name for c in self._agents.values()],
                "pids": pids,
                "owner_pid": os.getpid(),
            }
        )

    # --- teardown -----------------------------------------------------------------------

    def collect_logs(self, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        for container in [self._server, *self._agents.values()]:
            if container is not None:
                with contextlib.suppress(Exception):
                    (dest / f"{container.name}.log").write_bytes(container.logs())
        with contextlib.suppress(OSError):
            shutil.copytree(self.state.path / "logs", dest, dirs_exist_ok=True)

    def down(self) -> None:
        if not self.state.held:
            return
        self.links.stop()
        if self._api is not None:
            with contextlib.suppress(Exception):
                self._api.close()
            self._api = None
        with contextlib.suppress(Exception):
            reaper.remove(self.client, self.spec.name)
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
        stop_recorded(self.state)
        self.state.remove()

    @classmethod
    def teardown(cls, state: StateDir) -> list[str]:
        return reaper.teardown(state)
