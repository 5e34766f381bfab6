"""``edgebench up``, ``edgebench down`` and ``edgebench kubeconfig``: clusters for exploration."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import settings
from bench.distros import driver_class
from bench.distros.state import StateDir, clusters_root
from bench.errors import ClusterError, EnvironmentUnavailableError, UsageError
from bench.model import ClusterSpec

#: the settings of bench.settings that ``edgebench up`` takes
UP_SETTINGS = ("distro", "provider", "profile", "edge_nodes", "cluster_name", "netns")
UP_DEFAULTS = {"cluster_name": "edgebench"}


def _up(args: argparse.Namespace) -> int:
    values = settings.resolve(vars(args), names=UP_SETTINGS, defaults=UP_DEFAULTS)
    name = values["cluster_name"]
    cls = driver_class(values["distro"], values["provider"])
    cls.check_available()
    try:
        provider_settings = cls.provider_settings(values)
    except EnvironmentUnavailableError as exc:
        raise UsageError(str(exc)) from None  # exit 2: say what is needed, change nothing
    spec = ClusterSpec(
        name=name,
        edge_nodes=values["edge_nodes"],
        profile=values["profile"],
        detached=True,
        provider_settings=provider_settings,
    )
    driver = cls(spec)
    started = time.monotonic()
    print(
        f"starting {cls.name}/{cls.provider} cluster {name!r} with {spec.edge_nodes} "
        f"edge nodes ({spec.profile} profile)...",
        file=sys.stderr,
        flush=True,
    )
    # up() stops what it started when it fails, and only that: a refusal to replace a
    # running cluster must leave that cluster alone, so there is no down() here.
    driver.up()
    print(f"ready in {time.monotonic() - started:.1f}s; every edge node is Ready", file=sys.stderr)
    if args.lab_out:
        from bench.distros.local.cluster import LocalCluster
        from bench.distros.local.lab_export import export_lab

        if not isinstance(driver, LocalCluster):
            raise UsageError("--lab-out exports a local cluster; use --provider=local")
        lab = export_lab(driver, Path(args.lab_out))
        print(f"  lab file: {lab} (pytest suites/ --provider=remote --lab {lab})", file=sys.stderr)
    print(f"  kubectl --kubeconfig {driver.kubeconfig} get nodes", file=sys.stderr)
    print(f"  edgebench down {name}", file=sys.stderr)
    return 0


def state_dir(name: str) -> StateDir:
    """The state folder of cluster ``name``; a usage error listing the known clusters."""
    state = StateDir(name)
    if state.read() is None:
        root = clusters_root()
        known = sorted(p.name for p in root.glob("*") if StateDir(p.name).read() is not None)
        raise UsageError(
            f"no cluster named {name!r} (known: {', '.join(known) or 'none'}); "
            "start one with: edgebench up --name NAME"
        )
    return state


def _down(args: argparse.Namespace) -> int:
    state = state_dir(args.name)
    recorded = state.read() or {}
    try:
        cls = driver_class(recorded.get("distro", ""), recorded.get("provider"))
    except UsageError as exc:
        raise ClusterError(f"cluster {args.name!r} was made by an unknown driver: {exc}") from None
    stopped = cls.teardown(state)
    print(f"cluster {args.name!r} removed; stopped {len(stopped)} processes", file=sys.stderr)
    return 0


def _kubeconfig(args: argparse.Namespace) -> int:
    state = state_dir(args.name).read()
    if not state or not state.get("kubeconfig"):
        raise ClusterError(f"cluster {args.name!r} has no kubeconfig yet")
    print(state["kubeconfig"])
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("up", help="stand a cluster up and leave it running")
    settings.add_arguments(
        p.add_argument,
        UP_SETTINGS,
        flags={"cluster_name": ["--name", "--cluster-name"]},
        defaults=UP_DEFAULTS,
    )
    p.add_argument(
        "--lab-out",
        metavar="LAB",
        help="also start an sshd in every node namespace and write a lab file for the remote "
        "provider (--provider=remote --lab LAB)",
    )
    p.set_defaults(func=_up)
    p = subparsers.add_parser("down", help="stop every process of a cluster and remove its state")
    p.add_argument("name", nargs="?", default="edgebench")
    p.set_defaults(func=_down)
    p = subparsers.add_parser("kubeconfig", help="print the kubeconfig path of a cluster")
    p.add_argument("name", nargs="?", default="edgebench")
    p.set_defaults(func=_kubeconfig)
