"""The ``local`` provider: a real control plane on loopback and one edge agent process per
node, composed from the provider parts (``bench.distros.links`` for one link per node,
``bench.distros.readiness`` for the Ready wait); subclasses start the agents.

A cluster lives in ``$EDGEBENCH_HOME/clusters/<name>/`` with its logs, PKI, etcd data and a
``state.json`` naming every process, so ``edgebench down NAME`` can stop a cluster that
``edgebench up`` left running from another process.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from kubernetes import client

from bench import kube
from bench.build import tools
from bench.distros.base import Distro
from bench.distros.links import ToxiproxyLinks
from bench.distros.local import inside
from bench.distros.local.controlplane import FAST, LocalControlPlane
from bench.distros.readiness import progress, wait_all_ready
from bench.distros.state import LOCK_FILE, STATE_FILE, StateDir
from bench.errors import ClusterError, EnvironmentUnavailableError
from bench.faults import FaultKind
from bench.faults.composite import CompositeLink
from bench.model import Capability, ClusterSpec, EdgeNode, ProviderSettings, Timings
from bench.netns import NodeNamespace, cleanup_cluster, unavailable_reason
from bench.procs import Supervised, pid_alive, stop_pid
from bench.runner import Runner, run_local

log = logging.getLogger(__name__)


def ours(pid: int) -> bool:
    """Whether ``pid`` is alive and runs one of edgebench's built tools (a recorded pid may
    have been reused by an unrelated process since)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (OSError, UnicodeDecodeError):
        return False
    return pid_alive(pid) and cmdline.startswith(str(tools.edgebench_home() / "tools"))


def stop_recorded(state: StateDir) -> list[str]:
    """Stop every process of ours that the state records, last started first."""
    stopped: list[str] = []
    for name, pid in reversed(list((state.read() or {}).get("pids", {}).items())):
        if ours(int(pid)):
            stop_pid(int(pid))
            stopped.append(f"{name} (pid {pid})")
    return stopped


def keep_only_logs(state: StateDir) -> None:
    """After a failed bring-up: remove everything but ``logs/``, ``state.json`` and the lock,
    so the log paths an error names still exist until ``edgebench down``."""
    for child in state.path.glob("*"):
        if child.name not in ("logs", STATE_FILE, LOCK_FILE):
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


@dataclass(frozen=True)
class LocalSettings(ProviderSettings):
    """``netns``: each edge node in its own network namespace, with kernel faults (cuts,
    packet loss, bandwidth) beside Toxiproxy's; False: every node on the host's loopback."""

    netns: bool = False


def local_settings(spec: ClusterSpec) -> LocalSettings:
    settings = spec.provider_settings
    return settings if isinstance(settings, LocalSettings) else LocalSettings()


class LocalCluster(Distro):
    """Control plane + Toxiproxy + one agent per edge node, all on this machine; with
    ``netns``, each agent in its own network namespace whose only way out is its link."""

    provider = "local"
    #: binaries (from bench.build.tools) this driver needs besides the control plane's
    AGENT_BINARIES: tuple[str, ...] = ()
    #: the ``fast`` profile; agents whose heartbeat periods are fixed need longer grace
    FAST_TIMINGS: ClassVar[Timings] = FAST
    #: client-go's HTTP/2 health check, which kubelets and KWOK use for their API connection:
    #: a read-idle timeout of 30 s, then a ping that must answer within 15 s
    #: (k8s.io/apimachinery v0.32 pkg/util/net/http.go, readIdleTimeoutSeconds/pingTimeout)
    AGENT_SILENT_LINK_S: ClassVar[float] = 30.0 + 15.0
    CAPABILITIES = frozenset(
        {
            Capability.AGENT_RESTART,
            Capability.REBOOT,
            Capability.LINK_PROBE,
            Capability.FOOTPRINT,
        }
    )
    LACKS: ClassVar[Mapping[Capability, str]] = {
        Capability.REAL_RUNTIME: "a fake container runtime in the agent process: restarting "
        "the agent is a reboot (every container gone), see node_reboot_offline",
    }

    def __init__(self, spec: ClusterSpec) -> None:
        super().__init__(spec)
        self.state = StateDir(spec.name, spec.state_root, is_ours=ours)
        self.state_dir = self.state.path
        self.control_plane = LocalControlPlane(spec, self.state_dir, fast=self.FAST_TIMINGS)
        self.links = ToxiproxyLinks(self.state_dir / "logs", detached=spec.detached)
        self.cloud: list[Supervised] = []  # cloud-side processes besides the control plane
        self.agents: dict[str, Supervised] = {}
        self.read_only_ports: dict[str, int] = {}  # agents with a kubelet read-only port
        self._nodes: list[EdgeNode] = []
        self._api: client.ApiClient | None = None
        self.netns = local_settings(spec).netns
        self.namespaces: dict[str, NodeNamespace] = {}

    @classmethod
    def provider_settings(cls, options: Mapping[str, Any]) -> ProviderSettings:
        """``netns``: None (automatic) means namespaces where this machine allows them;
        True where it does not is an :class:`EnvironmentUnavailableError` with the reason."""
        wanted = options.get("netns")
        reason = unavailable_reason() if wanted is not False else None
        if wanted is True and reason is not None:
            raise EnvironmentUnavailableError(reason)
        return LocalSettings(netns=wanted is not False and reason is None)

    @classmethod
    def link_backends(cls, spec: ClusterSpec) -> frozenset[str]:
        if local_settings(spec).netns:
            return frozenset({"kernel", "toxiproxy"})
        return frozenset({"toxiproxy"})

    @classmethod
    def link_faults(cls, spec: ClusterSpec) -> frozenset[FaultKind]:
        faults = ToxiproxyLinks.faults()
        if local_settings(spec).netns:
            faults |= {FaultKind.LOSS}  # the kernel link adds packet loss (and does cuts)
        return faults

    # --- where each agent runs ----------------------------------------------------------

    def node_ip(self, node: str) -> str:
        """The address the agent of ``node`` has (its namespace's, or loopback)."""
        return self.namespaces[node].node_addr if node in self.namespaces else "127.0.0.1"

    def agent_argv(self, node: str, argv: list[str | Path]) -> list[str | Path]:
        """``argv`` to start inside the node's namespace (with its own hostname), if any."""
        if node not in self.namespaces:
            return argv
        return list(self.namespaces[node].exec_argv([str(a) for a in argv]))

    def node_runner(self, node: str) -> Runner | None:
        """Where the node's packets are, to run commands in (its namespace's runner); None:
        this machine's own network."""
        return self.namespaces[node].run if node in self.namespaces else None

    def _fetch(self, node: str, url: str, **tls: Path) -> inside.Answer:
        """GET ``url`` from where the node's packets are (inside its namespace, if any)."""
        return inside.fetch(self.node_runner(node) or run_local, url, timeout=120, **tls)

    @classmethod
    def required_binaries(cls) -> tuple[str, ...]:
        return (*LocalControlPlane.BINARIES, "toxiproxy-server", *cls.AGENT_BINARIES)

    @classmethod
    def check_available(cls) -> None:
        for binary in cls.required_binaries():
            tools.tool_path(binary)  # ToolError saying how to install it

    # --- what suites use ----------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig

    @property
    def edge_nodes(self) -> list[EdgeNode]:
        return list(self._nodes)

    @property
    def timings(self) -> Timings:
        return dataclasses.replace(
            self.control_plane.timings, agent_silent_link_s=self.AGENT_SILENT_LINK_S
        )

    @property
    def version(self) -> str:
        return tools.BINARIES["kube-apiserver"].version

    def tool_versions(self) -> dict[str, str]:
        return tools.tool_versions(self.required_binaries())

    @property
    def api(self) -> client.ApiClient:
        if self._api is None:
            self._api = kube.api_client(self.kubeconfig)
        return self._api

    def edge_pods(self, node: str) -> dict[str, str]:
        """The pods a kubelet-based agent itself holds, from its read-only ``/pods`` endpoint.

        The agent keeps running every pod its pod manager holds, also while the control plane
        is unreachable; the status in that listing is the last one it saw from the cloud
        (stale during an outage), so a held pod counts as ``Running`` unless it finished.
        """
        if Capability.EDGE_POD_VIEW not in self.CAPABILITIES or node not in self.read_only_ports:
            return super().edge_pods(node)  # NotSupportedError
        url = f"http://{self.agent_address(node)}:{self.read_only_ports[node]}/pods"
        try:
            runner = self.node_runner(node)
            if runner is not None:  # the agent's loopback is its namespace's
                data = json.loads(inside.fetch(runner, url).body)
            else:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    data = json.load(resp)
        except (OSError, ValueError, ClusterError) as exc:
            raise ClusterError(f"the agent of {node} does not answer on {url}: {exc}") from exc
        view = {}
        for pod in data.get("items") or []:
            phase = pod.get("status", {}).get("phase", "Unknown")
            key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            view[key] = phase if phase in ("Succeeded", "Failed") else "Running"
        return view

    def agent_address(self, node: str) -> str:
        """The address this machine reaches the agent of ``node`` on."""
        return "127.0.0.1"

    def restart_agent(self, node: str) -> None:
        """Stop the node's agent and start a new one (with a fake runtime, a reboot)."""
        self.agents[node].stop()
        self.agents[node] = self.start_agent(self.node(node))
        self._write_state()

    def agent_pids(self, node: str) -> list[int]:
        agent = self.agents.get(node)
        return [agent.pid] if agent is not None and agent.pid is not None else []

    def apiserver_metrics(self) -> str:
        return self.control_plane.get("/metrics", timeout=30).decode()

    def control_plane_pids(self) -> dict[str, int]:
        pids = dict(self.control_plane.pids())
        pids.update({p.name: p.pid for p in self.cloud if p.pid is not None})
        return pids

    def probe_link(self, node: str, path: str = "/version") -> tuple[float, int]:
        """One fresh request to the API server through the node's link, made from where the
        node's packets are; seconds and bytes of the answer."""
        address = self.node(node).dial_for(self.control_plane.addresses.apiserver)
        pki = self.control_plane.pki_dir
        answer = self._fetch(
            node,
            f"https://{address}{path}",
            cafile=self.control_plane.ca_cert,
            cert=pki / "edgebench-admin.crt",
            key=pki / "edgebench-admin.key",
        )
        return answer.seconds, len(answer.body.encode())

    # --- bring-up and teardown ----------------------------------------------------------

    def node_names(self) -> list[str]:
        return [f"edge-{i}" for i in range(self.spec.edge_nodes)]

    def start_cloud(self) -> None:
        """Start cloud-side processes besides the control plane (into ``self.cloud``)."""
        return None

    @abc.abstractmethod
    def start_agent(self, node: EdgeNode) -> Supervised:
        """Start the edge agent of ``node``; it must reach the control plane only through the
        addresses ``node.dial_for(upstream)`` (its link)."""

    def link_upstreams(self) -> list[str]:
        """What each edge node's link proxies to (the API server, for kubelet-like agents)."""
        return [self.control_plane.addresses.apiserver]

    def agent_log(self, node: str) -> Path:
        return self.state_dir / "logs" / f"agent-{node}.log"

    def up(self) -> None:
        """Start everything; on any failure (or Ctrl-C) stop what was started, keep the logs
        the error names, then raise. A cluster of the same name in use by another process
        is refused without touching it."""
        self.state.acquire()  # ClusterError naming the owner; nothing touched
        try:
            self._up()
        except BaseException as exc:
            for proc in [*self.control_plane.processes, *self.cloud, *self.agents.values()]:
                exc.add_note(
                    f"--- last lines of {proc.name} ({proc.log_path}):\n{proc.log_tail(5)}"
                )
            self.down(keep_logs=True)
            exc.add_note(
                f"logs kept in {self.state_dir / 'logs'}; remove them with: "
                f"edgebench down {self.spec.name}"
            )
            raise

    def _up(self) -> None:
        started = time.monotonic()
        self.state.clear()
        self._write_state()
        self.links.start()
        self._write_state()
        if self.netns:
            self._make_namespaces()
            progress(f"{len(self.namespaces)} node namespaces (+{time.monotonic() - started:.1f}s)")
        self.control_plane.start()
        self._write_state()
        progress(f"control plane up (+{time.monotonic() - started:.1f}s)")
        self.start_cloud()
        self._write_state()
        with self.observer(namespace="kube-system").running() as observer:
            for name in self.node_names():
                self._add_node(name)
                self._write_state()
            wait_all_ready(
                observer,
                self.node_names(),
                timeout=60 + 2 * self.spec.edge_nodes,
                alive=self.check_alive,
                started_mono=started,
            )

    def _make_namespaces(self) -> None:
        """One namespace per node, owned by the proxy server (it lives as long as the
        cluster, also a detached one); the API server's certificate names their host sides."""
        for name in self.node_names():
            self.namespaces[name] = NodeNamespace.create(
                self.spec.name, name, owner_pid=self.links.pid, allow_ports=[]
            )
            self._write_state()
        hosts = tuple(ns.host_addr for ns in self.namespaces.values())
        self.control_plane.extra_sans = (*self.control_plane.extra_sans, *hosts)

    def _add_node(self, name: str) -> None:
        """Make the node ``name`` with its link and start its agent."""
        node = self._make_node(name)
        self._nodes.append(node)
        self.agents[name] = self.start_agent(node)

    def _make_node(self, name: str) -> EdgeNode:
        """The node's link: Toxiproxy listening where the node can reach it (its namespace's
        host side) and, with namespaces, a kernel link on the node's side, composed."""
        ns = self.namespaces.get(name)
        node = self.links.make(name, self.link_upstreams(), ns.host_addr if ns else None)
        if ns is None:
            return node
        ports = sorted(int(address.rsplit(":", 1)[1]) for address in node.dial.values())
        ns.allow_ports(ports)  # the node may reach its link's listeners, nothing else
        kernel = ns.kernel_link(ports)
        return EdgeNode(name, CompositeLink(name, [kernel, node.link]), node.dial)

    def check_alive(self) -> None:
        """Raise :class:`ClusterError` naming the first process that died."""
        self.control_plane.check_alive()
        for proc in [*self.cloud, *self.agents.values()]:
            proc.check_alive()

    def _pids(self) -> dict[str, int]:
        pids = self.control_plane_pids()
        if self.links.pid is not None:
            pids["toxiproxy-server"] = self.links.pid
        for name, agent in self.agents.items():
            if agent.pid is not None:
                pids[f"agent-{name}"] = agent.pid
        return pids

    def _write_state(self) -> None:
        self.state.write(
            {
                "name": self.spec.name,
                "distro": self.name,
                "provider": self.provider,
                "profile": self.spec.profile,
                "kubeconfig": str(self.kubeconfig),
                "toxiproxy": self.links.url,
                "links": {n.name: dict(n.dial) for n in self._nodes},
                "namespaces": {n: ns.name for n, ns in self.namespaces.items()},
                "pids": self._pids(),
                "owner_pid": os.getpid(),
                **self._state_extra(),
            }
        )

    def _state_extra(self) -> dict[str, Any]:
        """What else a provider records in ``state.json`` (for ``edgebench fault``)."""
        return {}

    def collect_logs(self, dest: Path) -> None:
        with contextlib.suppress(OSError):
            shutil.copytree(self.state_dir / "logs", dest, dirs_exist_ok=True)

    def down(self, keep_logs: bool = False) -> None:
        """Stop agents, the proxy server and the control plane; remove all state (but the
        logs, with ``keep_logs``). Does nothing to a cluster this driver does not hold."""
        if not self.state.held:
            return
        for node in self._nodes:  # while the processes and namespaces the faults act in live
            with contextlib.suppress(Exception):
                node.link.restore()
        for proc in [*self.agents.values(), *reversed(self.cloud)]:
            proc.stop()
        self.links.stop()
        self.control_plane.stop()
        if self._api is not None:
            with contextlib.suppress(Exception):
                self._api.close()
            self._api = None
        stop_recorded(self.state)  # anything the state names that is somehow still alive
        for ns in self.namespaces.values():
            ns.remove()
        self.namespaces.clear()
        if keep_logs:
            keep_only_logs(self.state)
            self.state.release()
        else:
            self.state.remove()

    @classmethod
    def teardown(cls, state: StateDir) -> list[str]:
        """``edgebench down``: stop what a cluster's state records and remove its folder."""
        state.acquire(adopt_detached=True)
        stopped = stop_recorded(state)
        stopped += [f"namespace {n}" for n in cleanup_cluster(state.name)]
        state.remove()
        return stopped
