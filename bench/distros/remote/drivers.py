"""Existing clusters reached over SSH: ``--provider=remote --lab lab.yaml`` (docs/labs.md).

``up()`` creates nothing: it checks the lab (:mod:`.check`) and builds one link per node, by
its ``fault_backend``: a :class:`~bench.faults.kernel.KernelLink` whose commands run on the
node over SSH (sudo as the lab says), scoped to the lab's control-plane endpoints, with the
dead-man timer armed on the node itself (``iptables``, ``nft``); the user's own proxies on
their Toxiproxy (``toxiproxy``); or no fault at all (``none``: observed only). What the lab
can do is what *every* node can do. ``down()`` removes only what edgebench made: its chains
on each node, its toxics on the user's proxies (the namespaces the scenarios create are
deleted by the scenarios themselves).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from bench.distros.base import Distro
from bench.distros.remote.check import check_lab, failure
from bench.distros.remote.lab import Lab, LabNode, load_lab
from bench.distros.remote.reboot import reboot_node
from bench.distros.remote.runner import HostRunner
from bench.distros.remote.timings import (
    AGENT_FILES,
    AGENT_KEYS,
    CONTROL_PLANE_FILES,
    CONTROLLER_FLAGS,
    SourcedTimings,
    combine,
    from_texts,
    kubernetes_defaults,
    read_texts,
)
from bench.errors import ClusterError, EdgebenchError, NotSupportedError, UsageError
from bench.faults.base import FaultKind, Link
from bench.model import Capability, ClusterSpec, EdgeNode, ProviderSettings, Timings
from bench.settings import remote_needs_lab

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from bench.distros.remote.starlingx import SubcloudPoller
    from bench.hosts import Host

log = logging.getLogger(__name__)
#: the faults a kernel link can always do; bandwidth and latency depend on the node (tc, netem)
KERNEL_FAULTS = frozenset({FaultKind.CUT_BLACKHOLE, FaultKind.CUT_RESET, FaultKind.LOSS})
#: the link backend each ``fault_backend`` of a lab node makes
LINK_BACKEND = {"iptables": "kernel", "nft": "kernel", "toxiproxy": "toxiproxy", "none": "none"}
NONE_REASON = "fault_backend: none (edgebench observes the node and never faults it)"


@dataclass(frozen=True)
class RemoteSettings(ProviderSettings):
    """The remote provider's one setting: the lab file."""

    lab: Path | None = None


_LABS: dict[Path, Lab] = {}


def lab_of(spec: ClusterSpec, distro: str) -> Lab:
    """The spec's lab file, read once; a usage error saying how to give one when absent."""
    settings = spec.provider_settings
    path = settings.lab if isinstance(settings, RemoteSettings) else None
    if path is None:
        raise UsageError(remote_needs_lab(distro))
    key = Path(path).resolve()
    if key not in _LABS:
        _LABS[key] = load_lab(path)
    lab = _LABS[key]
    if lab.distro != distro:
        raise UsageError(
            f"{path} describes a {lab.distro} lab, not {distro}; run with --distro={lab.distro}"
        )
    return lab


class RemoteCluster(Distro):
    """A cluster someone else runs; edgebench only observes it and cuts its links."""

    provider = "remote"
    #: how the node's container runtime is asked (``crictl`` or ``k3s crictl``)
    CRICTL: ClassVar[str] = "crictl"
    #: how long the agent keeps a silent connection (Timings.agent_silent_link_s) unless the
    #: lab file says otherwise: a kubelet's client-go HTTP/2 health check, a ping after 30 s
    #: of silence with a 15 s timeout
    AGENT_SILENT_LINK_S: ClassVar[float] = 30.0 + 15.0
    AGENT_SILENT_LINK_SOURCE: ClassVar[str] = "client-go default (HTTP/2 idle 30 s + ping 15 s)"
    LACKS: ClassVar[Mapping[Capability, str]] = {
        Capability.EDGE_POD_VIEW: "the lab says runtime: fake and names no pods_url per node",
        Capability.REAL_RUNTIME: "the lab says runtime: fake",
        Capability.AGENT_RESTART: "a lab node has no agent service nor restart_command",
        Capability.REBOOT: "the lab does not say allow_reboot: true (or a node has no agent "
        "nor agent_active_command to wait for after the reboot)",
        Capability.EDGE_VOLUME_VIEW: "the remote provider does not read the agent's volumes",
        Capability.LINK_PROBE: "the remote provider does not probe links",
    }

    def __init__(self, spec: ClusterSpec) -> None:
        super().__init__(spec)
        self.lab = lab_of(spec, self.name)
        self._links: dict[str, Link] = {}
        self._hosts: dict[str, Host] = {}
        self._api: ApiClient | None = None
        self._timings: SourcedTimings | None = None
        self._version = ""
        self._kubeconfig = self.lab.kubeconfig

    @classmethod
    def provider_settings(cls, values: Mapping[str, Any]) -> ProviderSettings:
        return RemoteSettings(lab=values.get("lab"))

    @classmethod
    def capabilities_of(cls, lab: Lab) -> frozenset[Capability]:
        caps: set[Capability] = set()
        if lab.runtime == "real":
            caps |= {Capability.EDGE_POD_VIEW, Capability.REAL_RUNTIME}
        elif all(node.pods_url for node in lab.nodes):
            caps.add(Capability.EDGE_POD_VIEW)
        if all(node.restart for node in lab.nodes):
            caps.add(Capability.AGENT_RESTART)
        if lab.allow_reboot and all(node.agent_active for node in lab.nodes):
            caps.add(Capability.REBOOT)
        return frozenset(caps)

    @classmethod
    def lacks(cls, ability: Capability | FaultKind | str, spec: ClusterSpec) -> str | None:
        try:
            lab = lab_of(spec, cls.name)
        except UsageError as exc:
            return str(exc)
        if isinstance(ability, str) and ability.startswith("backend:"):
            backend = ability.split(":", 1)[1]
            lacking = [n for n in lab.nodes if LINK_BACKEND[n.fault_backend] != backend]
            return _nodes_lacking(lacking, f"a {backend} link")
        if isinstance(ability, FaultKind):
            lacking = [n for n in lab.nodes if ability not in _node_faults(lab, n)]
            return _nodes_lacking(lacking, str(ability))
        capability = Capability(ability)
        if capability in cls.capabilities_of(lab):
            return None
        return cls.LACKS.get(capability, "")

    @classmethod
    def link_backends(cls, spec: ClusterSpec) -> frozenset[str]:
        """The backend every node's link has (a mixed lab has none in common)."""
        try:
            lab = lab_of(spec, cls.name)
        except UsageError:
            return frozenset()
        backends = {LINK_BACKEND[node.fault_backend] for node in lab.nodes}
        return frozenset(backends) if len(backends) == 1 else frozenset()

    @classmethod
    def link_faults(cls, spec: ClusterSpec) -> frozenset[FaultKind]:
        """What every node's link can do: a kernel link's bandwidth needs tc and ifb, latency
        netem, on the node (probed once over SSH; a node that cannot be probed gets the
        iptables faults only, and ``up()`` then says what is wrong with it); a Toxiproxy
        link has no loss; a ``none`` node no fault at all."""
        try:
            lab = lab_of(spec, cls.name)
        except UsageError:
            return frozenset()
        kinds = set(FaultKind)
        for node in lab.nodes:
            kinds &= _node_faults(lab, node)
        return frozenset(kinds)

    # --- what suites use --------------------------------------------------------------

    @property
    def CAPABILITIES(self) -> frozenset[Capability]:  # type: ignore[override]
        return self.capabilities_of(self.lab)

    @property
    def kubeconfig(self) -> Path:
        return self._kubeconfig

    @property
    def api(self) -> ApiClient:
        if self._api is None:
            from kubernetes import config

            self._api = config.new_client_from_config(str(self.lab.kubeconfig),
                                                      context=self.lab.context)  # fmt: skip
        return self._api

    @property
    def edge_nodes(self) -> list[EdgeNode]:
        return [
            EdgeNode(n.name, self._links[n.name]) for n in self.lab.nodes if n.name in self._links
        ]

    @property
    def timings(self) -> Timings:
        if self._timings is None:
            raise ClusterError("the lab's timings are read by up(); call it first")
        return self._timings.timings

    @property
    def timing_sources(self) -> dict[str, str]:
        """Where each timing came from (run.json ``extra.timing_sources``)."""
        return dict(self._timings.sources) if self._timings else {}

    def run_extra(self) -> dict[str, Any]:
        return {"timing_sources": self.timing_sources, "lab": str(self.lab.path)}

    @property
    def version(self) -> str:
        return self._version

    def host(self, node: str) -> Host:
        if node not in self._hosts:
            self._hosts[node] = self.lab.node(node).ssh.host()
        return self._hosts[node]

    def edge_pods(self, node: str) -> dict[str, str]:
        """Pods as the node's runtime has them (``crictl pods``): a ready sandbox whose
        containers run counts as ``Running``."""
        url = self.lab.node(node).pods_url
        if self.lab.runtime != "real" and url:
            answer = self.host(node).run("curl -fsS --max-time 5 %s", url)
            if not answer.succeeded:
                raise ClusterError(f"the agent of {node} does not answer on {url}: {answer.stderr}")
            return parse_agent_pods(answer.stdout)
        if self.lab.runtime != "real":
            return super().edge_pods(node)
        result = self.host(node).run(f"{self.CRICTL} pods -o json")
        if not result.succeeded:
            raise ClusterError(f"{self.CRICTL} pods on {node} failed: {result.stderr.strip()}")
        return parse_crictl_pods(result.stdout)

    def restart_agent(self, node: str) -> None:
        command = self.lab.node(node).restart
        if not command:
            raise NotSupportedError(f"lab node {node} has no agent nor restart_command")
        self.host(node).check(command)

    def reboot(self, node: str) -> str:
        """Reboot the node over SSH and wait for it and its agent, its faults installed again
        (:mod:`.reboot`); only with ``allow_reboot: true``."""
        if Capability.REBOOT not in self.CAPABILITIES:
            raise NotSupportedError(f"lab node {node}: {self.LACKS[Capability.REBOOT]}")
        times = reboot_node(
            self.host(node), self.lab.node(node), self._links.get(node), self.lab.reboot_timeout_s
        )
        log.info("lab node %s %s", node, times.note())
        return times.note()

    # --- verify, then tear down what we made -----------------------------------------

    def up(self) -> None:
        from bench.scenario import workload

        reports = check_lab(self.lab)
        error = failure(reports)
        if error is not None:
            raise error
        self._version = self._server_version()
        self._timings = self._read_timings()
        workload.use_image(self.lab.workload_image if self.lab.runtime == "real" else None)
        for node in self.lab.nodes:
            self._links[node.name] = link = self._make_link(node)
            if node.fault_backend == "toxiproxy":
                # no dead-man timer on a Toxiproxy: what a killed run left (edgebench_*
                # toxics) would keep the first case cut; restore removes it and only it
                link.restore()

    def _make_link(self, node: LabNode) -> Link:
        link = _link_for(node, self.host(node.name))
        _PROBED[(self.lab.path.resolve(), node.name)] = link.capabilities()
        return link

    def _server_version(self) -> str:
        from kubernetes import client

        info = client.VersionApi(self.api).get_code(_request_timeout=15)
        return str(info.git_version)

    def _read_timings(self) -> SourcedTimings:
        match = re.match(r"v?1\.(\d+)", self._version)
        minor = int(match.group(1)) if match else None
        cluster: dict[str, tuple[float, str]] = {}
        if self.lab.control_plane is not None:
            texts = read_texts(self.lab.control_plane.host(), "kube-controller-manager|k3s server",
                               CONTROL_PLANE_FILES, "control plane")  # fmt: skip
            cluster.update(from_texts(texts, CONTROLLER_FLAGS))
        first = self.lab.nodes[0]
        agent = first.agent or "kubelet"
        texts = read_texts(self.host(first.name), f"{agent}|kubelet", AGENT_FILES, first.name)
        cluster.update(from_texts(texts, AGENT_KEYS))
        defaults = {**kubernetes_defaults(minor), "agent_silent_link_s": self.AGENT_SILENT_LINK_S}
        sources = {name: f"kubernetes default ({self._version})" for name in defaults}
        sources["agent_silent_link_s"] = self.AGENT_SILENT_LINK_SOURCE
        return combine(defaults, sources, self.lab.timings, cluster)

    def down(self) -> None:
        """Remove each node's chains, qdiscs and dead-man timer, and edgebench's toxics on the
        user's proxies; nothing else. Never raises."""
        for link in self._links.values():
            try:
                link.restore()
            except Exception as exc:  # the other nodes are still restored
                log.warning("could not restore the link of lab node %s: %s", link.name, exc)


_PROBED: dict[tuple[Path, str], frozenset[FaultKind]] = {}


def _node_faults(lab: Lab, node: LabNode) -> frozenset[FaultKind]:
    """What the link of ``node`` can do (a kernel link is probed over SSH, once)."""
    if node.fault_backend == "none":
        return frozenset()
    if node.fault_backend == "toxiproxy":
        from bench.faults.toxiproxy import ToxiproxyLink

        return ToxiproxyLink.CAPABILITIES
    key = (lab.path.resolve(), node.name)
    if key not in _PROBED:
        try:
            _PROBED[key] = _link_for(node).capabilities()  # the constructor probes
        except EdgebenchError as exc:
            log.warning("probing the link of lab node %s: %s", node.name, exc)
            _PROBED[key] = KERNEL_FAULTS
    return _PROBED[key]


def _nodes_lacking(nodes: list[LabNode], what: str) -> str | None:
    """Why the lab lacks ``what`` (None when no node does): the nodes and their backends."""
    if not nodes:
        return None
    parts = []
    for node in nodes:
        backend = node.fault_backend
        parts.append(
            f"{node.name} ({NONE_REASON if backend == 'none' else f'fault_backend: {backend}'})"
        )
    return f"not every lab node's link can do {what}: {'; '.join(parts)}"


def _link_for(node: LabNode, host: Host | None = None) -> Link:
    """The node's link by its ``fault_backend``: a kernel link whose commands go over SSH
    (the constructor probes the node), the user's Toxiproxy proxies, or no fault."""
    if node.fault_backend == "none":
        from bench.faults.observed import ObservedLink

        return ObservedLink(node.name, f"lab node {node.name}: {NONE_REASON}")
    if node.fault_backend == "toxiproxy":
        from bench.faults.toxiproxy import SharedToxiproxyLink
        from bench.faults.toxiproxy.api import Api

        assert node.toxiproxy_api is not None  # the lab file requires it
        api = Api(node.toxiproxy_api, log_hint=f" (lab node {node.name})")
        return SharedToxiproxyLink.of(api, node.name, node.toxiproxy_proxies)
    from bench.faults.kernel import KernelLink

    return KernelLink(
        node.name,
        HostRunner(host or node.ssh.host()),
        node.endpoints,
        node.dev,
        chain=node.chain,
        iptables="iptables-nft" if node.fault_backend == "nft" else None,
        owner_pid=None,  # another machine: only the time bound applies
    )


def parse_agent_pods(text: str) -> dict[str, str]:
    """A kubelet read-only ``/pods`` listing to ``ns/name -> phase``: the agent keeps running
    every pod it holds, also offline, so a held pod counts as ``Running`` unless it finished
    (the same reading as the local provider's)."""
    try:
        items = json.loads(text).get("items") or []
    except (json.JSONDecodeError, AttributeError) as exc:
        raise ClusterError(f"the agent's /pods gave no JSON: {exc}") from None
    view = {}
    for pod in items:
        phase = (pod.get("status") or {}).get("phase", "Unknown")
        meta = pod.get("metadata") or {}
        key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        view[key] = phase if phase in ("Succeeded", "Failed") else "Running"
    return view


def parse_crictl_pods(text: str) -> dict[str, str]:
    """``crictl pods -o json`` to ``ns/name -> Running|NotReady``."""
    try:
        items = json.loads(text).get("items") or []
    except (json.JSONDecodeError, AttributeError) as exc:
        raise ClusterError(f"crictl pods gave no JSON: {exc}") from None
    view: dict[str, str] = {}
    for item in items:
        meta = item.get("metadata") or {}
        key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        ready = item.get("state") == "SANDBOX_READY"
        # several sandboxes of one pod (a restart): any ready one counts
        if ready or key not in view:
            view[key] = "Running" if ready else "NotReady"
    return view


class K3sRemote(RemoteCluster):
    name = "k3s"
    CRICTL = "k3s crictl"


class KubeEdgeRemote(RemoteCluster):
    name = "kubeedge"
    AGENT_SILENT_LINK_S = 2 * 15.0
    AGENT_SILENT_LINK_SOURCE = "edgecore v1.20 default (edgeHub.heartbeat 15 s, two missed)"


class StarlingXRemote(RemoteCluster):
    name = "starlingx"

    def subcloud_poller(self) -> SubcloudPoller | None:
        """The lab's ``system_controller`` polled with ``dcmanager subcloud show``."""
        from bench.distros.remote.starlingx import SubcloudPoller

        controller = self.lab.system_controller
        if controller is None:
            raise NotSupportedError(
                "the lab names no system_controller (with its subcloud): the system "
                "controller's view of the subcloud is read there with dcmanager"
            )
        return SubcloudPoller(controller.ssh.host(), controller)


class VanillaRemote(RemoteCluster):
    name = "vanilla"
