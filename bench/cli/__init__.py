"""The ``edgebench`` command line: a thin layer over the library in ``bench``.

Each command group lives in its own module that exposes ``add_parser(subparsers)``; the parser
sets ``func`` to a callable taking the parsed namespace and returning an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bench import __version__
from bench.errors import EdgebenchError

# Command modules, imported lazily so ``edgebench tools`` does not pay for pandas.
_COMMAND_MODULES = (
    "bench.build.tools",
    "bench.cli.cluster",
    "bench.cli.node",
    "bench.cli.lab",
    "bench.cli.images",
    "bench.results.report",
    "bench.results.compare",
    "bench.results.versus",
    "bench.results.history",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgebench",
        description="Chaos and resilience benchmarks for edge Kubernetes distributions.",
    )
    parser.add_argument("--version", action="version", version=f"edgebench {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        module = importlib.import_module(name)
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except EdgebenchError as exc:
        print(f"edgebench: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("edgebench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
