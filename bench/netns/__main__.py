"""``python -m bench.netns --check-clean`` (exit 1 listing leftovers) or ``--cleanup-orphans``."""

from __future__ import annotations

import argparse
import sys

from bench.netns.reaper import cleanup_cluster, cleanup_orphan_chains, cleanup_orphans, leftovers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.netns", description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--check-clean",
        action="store_true",
        help="list every edgebench namespace, link, chain, qdisc, timer left; exit 1 if any",
    )
    group.add_argument(
        "--cleanup-orphans",
        action="store_true",
        help="remove namespaces and traffic counter chains whose owner is gone",
    )
    group.add_argument("--cleanup-cluster", metavar="CLUSTER", help="remove a cluster's namespaces")
    args = parser.parse_args(argv)
    if args.check_clean:
        left = leftovers()
        for line in left:
            print(f"edgebench leftover: {line}", file=sys.stderr)
        return 1 if left else 0
    if args.cleanup_orphans:
        removed = cleanup_orphans() + cleanup_orphan_chains()
    else:
        removed = cleanup_cluster(args.cleanup_cluster)
    for name in removed:
        print(f"removed {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
