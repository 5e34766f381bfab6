"""``edgebench up``, ``edgebench down`` and ``edgebench kubeconfig``: clusters for exploration."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.distros import DEFAULT_DISTRO, distro_names, driver_class
from bench.distros.local.cluster import clusters_root, destroy, read_state
from bench.errors import ClusterError, UsageError
from bench.model import PROFILES, ClusterSpec


def _up(args: argparse.Namespace) -> int:
    cls = driver_class(args.distro, args.provider)
    cls.check_available()
    spec = ClusterSpec(
        name=args.name, edge_nodes=args.edge_nodes, profile=args.profile, detached=True
    )
    driver = cls(spec)
    started = time.monotonic()
    print(
        f"starting {cls.name}/{cls.provider} cluster {args.name!r} with {args.edge_nodes} "
        f"edge nodes ({args.profile} profile)...",
        file=sys.stderr,
        flush=True,
    )
    try:
        driver.up()
    except BaseException:
        print("bring-up failed; stopping what was started", file=sys.stderr)
        driver.down()
        raise
    print(f"ready in {time.monotonic() - started:.1f}s; every edge node is Ready", file=sys.stderr)
    print(f"  kubectl --kubeconfig {driver.kubeconfig} get nodes", file=sys.stderr)
    print(f"  edgebench down {args.name}", file=sys.stderr)
    return 0


def _state_dir(name: str) -> Path:
    path = clusters_root() / name
    if read_state(path) is None:
        known = sorted(p.name for p in clusters_root().glob("*") if read_state(p) is not None)
        raise UsageError(
            f"no cluster named {name!r} (known: {', '.join(known) or 'none'}); "
            "start one with: edgebench up --name NAME"
        )
    return path


def _down(args: argparse.Namespace) -> int:
    stopped = destroy(_state_dir(args.name))
    print(f"cluster {args.name!r} removed; stopped {len(stopped)} processes", file=sys.stderr)
    return 0


def _kubeconfig(args: argparse.Namespace) -> int:
    state = read_state(_state_dir(args.name))
    if not state or not state.get("kubeconfig"):
        raise ClusterError(f"cluster {args.name!r} has no kubeconfig yet")
    print(state["kubeconfig"])
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("up", help="stand a cluster up and leave it running")
    p.add_argument("--distro", default=DEFAULT_DISTRO, choices=distro_names())
    p.add_argument("--provider", default=None)
    p.add_argument("--edge-nodes", type=int, default=3)
    p.add_argument("--profile", default="fast", choices=PROFILES)
    p.add_argument("--name", default="edgebench")
    p.set_defaults(func=_up)
    p = subparsers.add_parser("down", help="stop every process of a cluster and remove its state")
    p.add_argument("name", nargs="?", default="edgebench")
    p.set_defaults(func=_down)
    p = subparsers.add_parser("kubeconfig", help="print the kubeconfig path of a cluster")
    p.add_argument("name", nargs="?", default="edgebench")
    p.set_defaults(func=_kubeconfig)
