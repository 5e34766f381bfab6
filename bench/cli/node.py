"""``edgebench fault`` and ``edgebench exec``: explore one edge node of a running cluster
(from ``edgebench up``; a local node's namespace or a docker node's container) from the shell.
A fault is held until ``--for`` elapses or Ctrl-C and always undone; a kernel fault also arms
the node's dead-man timer, so even a killed command cannot leave the node partitioned."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from typing import Any

from bench.cli.cluster import state_dir
from bench.errors import UsageError
from bench.faults import CUT_MODES, Fault, FaultKind, Link
from bench.faults.composite import CompositeLink
from bench.faults.kernel import KernelLink, listener_endpoints
from bench.faults.toxiproxy.api import Api
from bench.faults.toxiproxy.link import ToxiproxyLink
from bench.netns import NodeNamespace

#: what ``edgebench fault`` can do, and the option each kind needs
KINDS = {"cut": "--mode", "latency": "--ms", "bandwidth": "--kbps", "loss": "--percent"}
MARGIN_S = 30.0  # the dead-man timer fires this long after --for has elapsed


def node_link(cluster: str, node: str, hold_s: float) -> Link:
    """The link of ``node`` in running cluster ``cluster``, rebuilt from its state."""
    state = state_dir(cluster).read() or {}
    links: dict[str, dict[str, str]] = state.get("links") or {}
    if node not in links:
        raise UsageError(
            f"cluster {cluster} has no node {node!r}; its nodes: {', '.join(sorted(links))}"
        )
    if not state.get("toxiproxy"):
        raise UsageError(f"cluster {cluster} records no link server; is it still starting?")
    parts: list[Link] = []
    if node in (state.get("namespaces") or {}):
        ports = sorted(int(address.rsplit(":", 1)[1]) for address in links[node].values())
        parts.append(NodeNamespace.find(cluster, node).kernel_link(ports, hold_s=hold_s))
    elif state.get("kernel") and node in (state.get("containers") or {}):
        parts.append(_container_kernel_link(node, state["containers"][node], links[node], hold_s))
    parts.append(ToxiproxyLink.attach(Api(str(state["toxiproxy"])), node))
    return parts[0] if len(parts) == 1 else CompositeLink(node, parts)


def _container_kernel_link(
    node: str, container: str, dial: dict[str, str], hold_s: float
) -> KernelLink:
    """The kernel part of a docker node's link: in its container's namespace, scoped to its
    Toxiproxy listeners (as the cluster's own, see bench.distros.docker.cluster)."""
    from bench.distros.docker import engine
    from bench.distros.docker.nsrunner import ContainerNetns

    # the client stays open: the namespace runner looks the container's pid up through it at
    # each command (this command's process is short-lived)
    found = engine.connect().containers.get(container)
    endpoints = listener_endpoints(dial.values())
    return KernelLink(node, ContainerNetns(found), endpoints, "eth0", hold_s=hold_s)


def make_fault(link: Link, args: argparse.Namespace) -> AbstractContextManager[Fault]:
    """The fault the arguments ask for; a usage error naming what is missing or refused."""
    need = KINDS[args.kind]
    value = getattr(args, need.lstrip("-"))
    if value is None:
        raise UsageError(f"edgebench fault {args.kind} needs {need}")
    kind = FaultKind.cut(value) if args.kind == "cut" else FaultKind(args.kind)
    if not link.supports(kind):
        can = ", ".join(sorted(link.capabilities()))
        raise UsageError(f"the link of {args.node} cannot do {kind} (it can do: {can})")
    calls: dict[str, Any] = {
        "cut": lambda: link.cut(mode=value),
        "latency": lambda: link.latency(value, jitter_ms=args.jitter_ms or 0),
        "bandwidth": lambda: link.bandwidth(value),
        "loss": lambda: link.loss(value),
    }
    fault: Fault = calls[args.kind]()
    return fault


def _fault(args: argparse.Namespace) -> int:
    if args.kind not in KINDS:
        raise UsageError(f"unknown fault {args.kind!r}; valid: {', '.join(KINDS)}")
    hold = args.for_s if args.for_s is not None else 24 * 3600.0
    link = node_link(args.cluster, args.node, hold_s=hold + MARGIN_S)
    with make_fault(link, args) as fault:
        until = "until Ctrl-C" if args.for_s is None else f"for {args.for_s:g}s"
        print(f"{fault.label} on {args.node} {until}", file=sys.stderr, flush=True)
        try:
            time.sleep(hold)
        except KeyboardInterrupt:
            print("interrupted: undoing the fault", file=sys.stderr)
    print(f"undone after {fault.duration_s:.1f}s", file=sys.stderr)
    return 0


def _exec(args: argparse.Namespace) -> int:
    if not args.argv:
        raise UsageError("edgebench exec CLUSTER NODE -- COMMAND [ARG...]: no command given")
    argv = args.argv[1:] if args.argv[0] == "--" else args.argv
    state = state_dir(args.cluster).read() or {}
    containers: dict[str, str] = state.get("containers") or {}
    if args.node in containers:  # docker: this machine's command in the container's namespace
        from bench.distros.docker import engine

        client = engine.connect()
        try:
            pid = engine.init_pid(client.containers.get(containers[args.node]))
        finally:
            client.close()
        return subprocess.call(["nsenter", "-t", str(pid), "-n", *argv])
    if args.node not in (state.get("namespaces") or {}):
        nodes = ", ".join(sorted(state.get("namespaces") or {})) or "none (started with --no-netns)"
        raise UsageError(f"cluster {args.cluster} has no node namespace {args.node!r}: {nodes}")
    ns = NodeNamespace.find(args.cluster, args.node)
    return subprocess.call(ns.exec_argv(argv, hostname=False))


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "fault", help="apply one fault to one node of a running cluster, then undo it"
    )
    p.add_argument("cluster")
    p.add_argument("node")
    p.add_argument("kind", help=f"one of: {', '.join(KINDS)}")
    p.add_argument("--mode", choices=CUT_MODES, help="cut mode (cut)")
    p.add_argument("--ms", type=float, help="added delay each way in ms (latency)")
    p.add_argument("--jitter-ms", type=float, help="jitter in ms (latency)")
    p.add_argument("--kbps", type=float, help="cap in kilobytes per second (bandwidth)")
    p.add_argument("--percent", type=float, help="share of packets dropped (loss)")
    p.add_argument("--for", dest="for_s", type=float, help="seconds to hold (default: Ctrl-C)")
    p.set_defaults(func=_fault)
    p = subparsers.add_parser("exec", help="run a command inside a node's network namespace")
    p.add_argument("cluster")
    p.add_argument("node")
    p.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    p.set_defaults(func=_exec)
