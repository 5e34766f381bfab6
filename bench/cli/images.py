"""``edgebench images build``: the local container images of the docker provider."""

from __future__ import annotations

import argparse
import sys


def _build(args: argparse.Namespace) -> int:
    from bench.distros.docker import engine, images

    client = engine.connect()
    tag = images.build_agents(client, force=args.force)
    print(tag)
    print(f"edgebench: ready: {tag} (agents for --provider=docker)", file=sys.stderr)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("images", help="container images for --provider=docker")
    sub = p.add_subparsers(dest="images_command", metavar="ACTION", required=True)
    b = sub.add_parser(
        "build",
        help="build the agents image from the installed tools (cached by their versions)",
        description="Builds edgebench/agents:<digest> from a debootstrap minbase root "
        "filesystem (imported once) plus kubemark, kwok and hollowedge from "
        "$EDGEBENCH_HOME/tools. No registry is used. Prints the tag.",
    )
    b.add_argument("--force", action="store_true", help="rebuild even if the tag exists")
    b.set_defaults(func=_build)
