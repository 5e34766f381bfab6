"""The lab file: an existing cluster and how to reach its edge nodes (docs/labs.md).

    lab = load_lab(Path("lab.yaml"))
    lab.nodes[0].host()          # a bench.hosts.Host over SSH (sudo as the file says)
    lab.nodes[0].endpoints       # the control-plane endpoints a cut severs

The YAML is composed (not just loaded) so every value keeps its line: an error names the file,
the line and the key, ``lab.yaml:12: nodes[1].endpoints[0].ports[0]: 70000 is not 1..65535``.
Secrets never go in the file: a password in a host spec is refused; dcmanager's credentials
come from the system controller's own ``openrc``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

import yaml
from yaml.constructor import SafeConstructor

from bench.errors import FaultError, UsageError
from bench.faults.kernel.rules import Endpoint
from bench.model import Timings

FaultBackend = Literal["iptables", "nft", "toxiproxy", "none"]
FAULT_BACKENDS: tuple[FaultBackend, ...] = ("iptables", "nft", "toxiproxy", "none")
#: ``real``: a container runtime (crictl) on the node; ``fake``: hollow agents (the local lab)
Runtime = Literal["real", "fake"]
RUNTIMES: tuple[Runtime, ...] = ("real", "fake")
KNOWN_DISTROS = ("k3s", "kubeedge", "starlingx", "vanilla", "kwok")
#: the agent service of each known distro (a node may name another)
DEFAULT_AGENT = {
    "k3s": "k3s-agent",
    "kubeedge": "edgecore",
    "starlingx": "kubelet",
    "vanilla": "kubelet",
    "kwok": "",
}
DEFAULT_WORKLOAD_IMAGE = "registry.k8s.io/pause:3.10"
#: the Timings fields a lab may set: every field of Timings
TIMING_KEYS = tuple(f.name for f in dataclasses.fields(Timings))
T = TypeVar("T")


class LabError(UsageError):
    """The lab file is wrong; the message names file, line and key."""


class _Doc:
    """Plain values of a composed YAML document, with the line of every value."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines: dict[str, int] = {}
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f"{mark.line + 1}:" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise LabError(f"{path}:{line} not valid YAML: {problem}") from None
        if root is None:
            raise LabError(f"{path}: empty lab file; see docs/labs.md for an example")
        self._constructor = SafeConstructor()
        self.value = self._plain(root, "")

    def _plain(self, node: yaml.Node, key: str) -> Any:
        self.lines[key] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for k, v in node.value:
                name = str(self._constructor.construct_object(k))
                out[name] = self._plain(v, f"{key}.{name}" if key else name)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._plain(v, f"{key}[{i}]") for i, v in enumerate(node.value)]
        return self._constructor.construct_object(node)

    def error(self, key: str, message: str) -> LabError:
        probe = key
        while probe and probe not in self.lines:  # a missing key: its mapping's line
            parent = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", probe)
            probe = "" if parent == probe else parent
        line = self.lines.get(probe)
        where = f"{self.path}:{line}:" if line else f"{self.path}:"
        return LabError(f"{where} {message}")


class _Fields:
    """Typed reads of one mapping of the document, each failure naming its key and line."""

    def __init__(self, doc: _Doc, key: str, value: Any, allowed: tuple[str, ...]) -> None:
        self.doc, self.key = doc, key
        label = key or "the lab file"
        if not isinstance(value, Mapping):
            raise doc.error(key, f"{label}: must be a mapping of keys, got {_kind(value)}")
        self.value = value
        unknown = [k for k in value if k not in allowed]
        if unknown:
            bad = self.sub(unknown[0])
            raise doc.error(
                bad, f"{bad}: unknown key; valid keys here: {', '.join(sorted(allowed))}"
            )

    def sub(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def get(self, name: str, kind: type[T], default: T | None = None) -> T | None:
        if name not in self.value or self.value[name] is None:
            return default
        value = self.value[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            key = self.sub(name)
            raise self.doc.error(key, f"{key}: must be {_KIND[kind]}, got {_kind(value)}")
        return cast(T, value)

    def need(self, name: str, kind: type[T]) -> T:
        value = self.get(name, kind)
        if value is None:
            key = self.sub(name)
            raise self.doc.error(key, f"{key}: required ({_KIND[kind]})")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(name, str, default) or default
        if value not in choices:
            key = self.sub(name)
            raise self.doc.error(key, f"{key}: {value!r} is not one of {', '.join(choices)}")
        return value

    def check(self, name: str, fn: Callable[[], T]) -> T:
        """Run ``fn``; an EdgebenchError from it is reported at key ``name``."""
        try:
            return fn()
        except (FaultError, UsageError) as exc:
            key = self.sub(name)
            raise self.doc.error(key, f"{key}: {exc}") from None


_KIND: dict[type, str] = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a mapping",
}


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{value!r} ({type(value).__name__})"


@dataclass(frozen=True)
class SshTarget:
    """How to reach one machine over SSH, as a testinfra host spec and options."""

    spec: str
    identity_file: Path | None = None
    sudo: bool = False
    ssh_config: Path | None = None
    jump_host: str | None = None
    known_hosts: Path | None = None
    connect_timeout_s: int = 10

    @property
    def address(self) -> str:
        return urlsplit(self.spec).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.spec).port or 22

    def ssh_extra_args(self) -> str:
        args = ["-o BatchMode=yes", "-o ServerAliveInterval=5", "-o ServerAliveCountMax=3"]
        if self.known_hosts is not None:
            args += [f"-o UserKnownHostsFile={self.known_hosts}", "-o StrictHostKeyChecking=yes"]
        if self.jump_host:
            args.append(f"-J {self.jump_host}")
        return " ".join(args)

    def host(self) -> Any:
        """A :class:`bench.hosts.Host` for this target (imported late: testinfra)."""
        from bench.hosts import Host

        options: dict[str, Any] = {
            "ssh_extra_args": self.ssh_extra_args(),
            "timeout": self.connect_timeout_s,
        }
        if self.identity_file is not None:
            options["ssh_identity_file"] = str(self.identity_file)
        if self.ssh_config is not None:
            options["ssh_config"] = str(self.ssh_config)
        return Host(self.spec, sudo=self.sudo, **options)


@dataclass(frozen=True)
class LabNode:
    """One edge node of the lab."""

    name: str
    ssh: SshTarget
    endpoints: tuple[Endpoint, ...]
    fault_backend: FaultBackend = "iptables"
    #: ``fault_backend: toxiproxy``: the API of the Toxiproxy the node's agent is routed
    #: through, and the proxies (the user's, by name) that carry its control-plane traffic
    toxiproxy_api: str | None = None
    toxiproxy_proxies: tuple[str, ...] = ()
    agent: str = ""
    #: shell command restarting the agent (default ``systemctl restart <agent>``)
    restart_command: str = ""
    #: where the kernel backend's rules go: the node's interface towards the endpoints
    dev: str | None = None
    #: prefix of the node's two chains (``<chain>-IN``/``-OUT``); unique per machine when
    #: several lab nodes share one (the default suits one node per machine)
    chain: str = "EDGEBENCH"
    #: a kubelet-style read-only ``/pods`` URL of the agent, fetched on the node (``curl``):
    #: the edge pod view of agents without a container runtime (the local lab's hollow ones)
    pods_url: str | None = None
    #: what reboots the node (``allow_reboot: true``); default ``systemctl reboot || reboot``
    reboot_command: str = ""
    #: a command that succeeds once the agent runs (default ``systemctl is-active --quiet
    #: <agent>``): what a reboot waits for
    agent_active_command: str = ""
    #: prints the node's boot id, which a reboot changes (default ``cat
    #: /proc/sys/kernel/random/boot_id``): how a reboot is told from an SSH hiccup
    boot_id_command: str = ""

    @property
    def boot_id(self) -> str:
        return self.boot_id_command or "cat /proc/sys/kernel/random/boot_id"

    @property
    def restart(self) -> str:
        return self.restart_command or (f"systemctl restart {self.agent}" if self.agent else "")

    @property
    def reboot(self) -> str:
        return self.reboot_command or "systemctl reboot || reboot"

    @property
    def agent_active(self) -> str:
        if self.agent_active_command:
            return self.agent_active_command
        return f"systemctl is-active --quiet {self.agent}" if self.agent else ""


@dataclass(frozen=True)
class SystemController:
    """StarlingX: where ``dcmanager`` answers, and the subcloud of this lab."""

    ssh: SshTarget
    subcloud: str
    openrc: str = "/etc/platform/openrc"
    #: the name of an environment variable of the harness holding the keystone password, for
    #: a controller whose ``openrc`` does not provide it (the value is never in the file)
    password_env: str | None = None


@dataclass(frozen=True)
class Lab:
    """A validated lab file."""

    path: Path
    distro: str
    kubeconfig: Path
    nodes: tuple[LabNode, ...]
    context: str | None = None
    runtime: Runtime = "real"
    allow_reboot: bool = False
    #: how long a reboot may take, from the command to the agent active again
    reboot_timeout_s: float = 600.0
    workload_image: str = DEFAULT_WORKLOAD_IMAGE
    timings: Mapping[str, float] = field(default_factory=dict)
    control_plane: SshTarget | None = None
    system_controller: SystemController | None = None

    def node(self, name: str) -> LabNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r} in {self.path}")


def _path(base: Path, text: str) -> Path:
    p = Path(os.path.expanduser(text))
    return p if p.is_absolute() else (base / p)


def _ssh(doc: _Doc, f: _Fields, base: Path) -> SshTarget:
    spec = f.need("host", str)
    parts = urlsplit(spec)
    key = f.sub("host")
    if parts.scheme not in ("ssh", "paramiko") or not parts.hostname:
        raise doc.error(key, f"{key}: {spec!r} is not ssh://[user@]host[:port]")
    if parts.password:
        raise doc.error(
            key, f"{key}: no passwords in the lab file; use identity_file (a key) instead"
        )
    try:
        parts.port  # noqa: B018  (raises for a bad port)
    except ValueError as exc:
        raise doc.error(key, f"{key}: {exc}") from None
    identity = f.get("identity_file", str)
    config = f.get("ssh_config", str)
    known = f.get("known_hosts", str)
    timeout = f.get("connect_timeout_s", int, 10) or 10
    return SshTarget(
        spec=spec,
        identity_file=_path(base, identity) if identity else None,
        sudo=bool(f.get("sudo", bool, False)),
        ssh_config=_path(base, config) if config else None,
        jump_host=f.get("jump_host", str),
        known_hosts=_path(base, known) if known else None,
        connect_timeout_s=timeout,
    )


_SSH_KEYS = ("host", "identity_file", "sudo", "ssh_config", "jump_host", "known_hosts",
             "connect_timeout_s")  # fmt: skip


def _endpoint(doc: _Doc, key: str, value: Any) -> Endpoint:
    f = _Fields(doc, key, value, ("address", "ports", "protocol"))
    address = f.need("address", str)
    ports = f.get("ports", list, []) or []
    for i, port in enumerate(ports):
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            k = f"{key}.ports[{i}]"
            raise doc.error(k, f"{k}: {port!r} is not a port 1..65535")
    protocol = f.choice("protocol", ("tcp", "udp"), "tcp")
    return f.check(
        "address",
        lambda: Endpoint(address, tuple(ports), cast(Literal["tcp", "udp"], protocol)),
    )


def _chain(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,23}", name):
        raise UsageError(f"{name!r} must be a letter then at most 23 letters, digits, - or _")
    return name


_PROXY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def _toxiproxy(doc: _Doc, f: _Fields, backend: str) -> tuple[str | None, tuple[str, ...]]:
    """``toxiproxy_api`` and ``toxiproxy_proxy`` (one name or a list): both required with
    ``fault_backend: toxiproxy``, refused with any other backend."""
    api = f.get("toxiproxy_api", str)
    raw = f.value.get("toxiproxy_proxy")
    if backend != "toxiproxy":
        for name in ("toxiproxy_api", "toxiproxy_proxy"):
            if f.value.get(name) is not None:
                k = f.sub(name)
                raise doc.error(
                    k, f"{k}: only with fault_backend: toxiproxy (this node's is {backend})"
                )
        return None, ()
    k = f.sub("toxiproxy_api")
    if not api:
        raise doc.error(k, f"{k}: required with fault_backend: toxiproxy (http://host:8474)")
    parts = urlsplit(api)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise doc.error(k, f"{k}: {api!r} is not http://host:port (Toxiproxy's API, e.g. :8474)")
    k = f.sub("toxiproxy_proxy")
    if raw is None:
        raise doc.error(
            k,
            f"{k}: required with fault_backend: toxiproxy: the name of the proxy (or a list of "
            "names) the node's agent reaches its control plane through",
        )
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names:
        raise doc.error(k, f"{k}: must be a proxy name or a list of them, got {_kind(raw)}")
    for i, name in enumerate(names):
        ki = k if isinstance(raw, str) else f"{k}[{i}]"
        if not isinstance(name, str) or not _PROXY_NAME.fullmatch(name):
            raise doc.error(
                ki, f"{ki}: {name!r} is not a proxy name (letters, digits, '.', '_', '-')"
            )
    if len(set(names)) != len(names):
        raise doc.error(k, f"{k}: a proxy is listed twice")
    return api.rstrip("/"), tuple(names)


def _node(doc: _Doc, key: str, value: Any, base: Path, distro: str, agent: str) -> LabNode:
    allowed = (*_SSH_KEYS, "name", "endpoints", "fault_backend", "toxiproxy_api",
               "toxiproxy_proxy", "agent", "restart_command", "dev", "chain",
               "pods_url", "reboot_command", "agent_active_command",
               "boot_id_command")  # fmt: skip
    f = _Fields(doc, key, value, allowed)
    name = f.need("name", str)
    ssh = _ssh(doc, f, base)
    backend = cast(FaultBackend, f.choice("fault_backend", FAULT_BACKENDS, "iptables"))
    raw = f.get("endpoints", list, []) or []
    endpoints = tuple(_endpoint(doc, f"{key}.endpoints[{i}]", e) for i, e in enumerate(raw))
    if backend in ("iptables", "nft") and not endpoints:
        k = f.sub("endpoints")
        raise doc.error(
            k,
            f"{k}: the {backend} backend cuts only the listed control-plane endpoints; "
            "list at least one (address and ports its agent dials)",
        )
    api, proxies = _toxiproxy(doc, f, backend)
    return LabNode(
        name=name,
        ssh=ssh,
        endpoints=endpoints,
        fault_backend=backend,
        toxiproxy_api=api,
        toxiproxy_proxies=proxies,
        agent=f.get("agent", str, agent) or "",
        restart_command=f.get("restart_command", str, "") or "",
        dev=f.get("dev", str),
        pods_url=f.get("pods_url", str),
        reboot_command=f.get("reboot_command", str, "") or "",
        agent_active_command=f.get("agent_active_command", str, "") or "",
        boot_id_command=f.get("boot_id_command", str, "") or "",
        chain=f.check("chain", lambda: _chain(f.get("chain", str, "EDGEBENCH") or "EDGEBENCH")),
    )


def _positive(doc: _Doc, f: _Fields, name: str, default: float) -> float:
    value = f.get(name, float, default)
    assert value is not None
    if value <= 0:
        raise doc.error(f.sub(name), f"{f.sub(name)}: must be > 0, got {value:g}")
    return value


def parse_lab(text: str, path: Path) -> Lab:
    """Validate the lab file ``text`` (read from ``path``, for messages and relative paths)."""
    doc = _Doc(path, text)
    top = ("distro", "kubeconfig", "context", "nodes", "runtime", "allow_reboot",
           "reboot_timeout_s", "agent", "workload_image", "timings", "control_plane",
           "system_controller")  # fmt: skip
    f = _Fields(doc, "", doc.value, top)
    base = path.parent
    distro = f.need("distro", str)
    if distro not in KNOWN_DISTROS and "timings" not in f.value:
        raise doc.error(
            "distro",
            f"distro: {distro!r} is not one of {', '.join(KNOWN_DISTROS)}; another name needs "
            "explicit timings: (see docs/labs.md)",
        )
    agent = f.get("agent", str, DEFAULT_AGENT.get(distro, "")) or ""
    raw_nodes = f.need("nodes", list)
    if not raw_nodes:
        raise doc.error("nodes", "nodes: list at least one edge node")
    nodes = tuple(
        _node(doc, f"nodes[{i}]", n, base, distro, agent) for i, n in enumerate(raw_nodes)
    )
    seen: dict[str, int] = {}
    for i, node in enumerate(nodes):
        if node.name in seen:
            k = f"nodes[{i}].name"
            raise doc.error(
                k, f"{k}: {node.name!r} is listed twice (also nodes[{seen[node.name]}])"
            )
        seen[node.name] = i
    owner: dict[tuple[str, str], int] = {}
    for i, node in enumerate(nodes):
        for proxy in node.toxiproxy_proxies:
            key = (node.toxiproxy_api or "", proxy)
            if key in owner:
                k = f"nodes[{i}].toxiproxy_proxy"
                raise doc.error(
                    k,
                    f"{k}: proxy {proxy!r} is also nodes[{owner[key]}]'s; a cut of one node "
                    "would cut the other",
                )
            owner[key] = i
    timings: dict[str, float] = {}
    if "timings" in f.value:
        tf = _Fields(doc, "timings", f.value["timings"], TIMING_KEYS)
        for k in TIMING_KEYS:
            v = tf.get(k, float)
            if v is not None:
                if v < 0:
                    raise doc.error(f"timings.{k}", f"timings.{k}: must be >= 0, got {v:g}")
                timings[k] = v
    control_plane = None
    if f.value.get("control_plane") is not None:
        control_plane = _ssh(doc, _Fields(doc, "control_plane", f.value["control_plane"],
                                          _SSH_KEYS), base)  # fmt: skip
    controller = None
    if f.value.get("system_controller") is not None:
        sf = _Fields(doc, "system_controller", f.value["system_controller"],
                     (*_SSH_KEYS, "subcloud", "openrc", "password_env"))  # fmt: skip
        password_env = sf.get("password_env", str)
        if password_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", password_env):
            k = "system_controller.password_env"
            raise doc.error(
                k,
                f"{k}: {password_env!r} is not an environment variable's name (the name "
                "of the variable holding the password goes here, never the password)",
            )
        controller = SystemController(
            ssh=_ssh(doc, sf, base),
            subcloud=sf.need("subcloud", str),
            openrc=sf.get("openrc", str, "/etc/platform/openrc") or "/etc/platform/openrc",
            password_env=password_env,
        )
    return Lab(
        path=path,
        distro=distro,
        kubeconfig=_path(base, f.need("kubeconfig", str)),
        nodes=nodes,
        context=f.get("context", str),
        runtime=cast(Runtime, f.choice("runtime", RUNTIMES, "real")),
        allow_reboot=bool(f.get("allow_reboot", bool, False)),
        reboot_timeout_s=_positive(doc, f, "reboot_timeout_s", 600.0),
        workload_image=f.get("workload_image", str, DEFAULT_WORKLOAD_IMAGE)
        or DEFAULT_WORKLOAD_IMAGE,
        timings=timings,
        control_plane=control_plane,
        system_controller=controller,
    )


def load_lab(path: Path | str) -> Lab:
    """Read and validate a lab file; :class:`LabError` names the key and line of a mistake."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise LabError(f"cannot read lab file {path}: {exc.strerror or exc}") from None
    return parse_lab(text, path)
