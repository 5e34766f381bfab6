"""``edgebench lab check LAB``: verify an existing lab without changing anything on it."""

from __future__ import annotations

import argparse
import sys

from bench import settings


def _check(args: argparse.Namespace) -> int:
    from bench.distros.remote.check import check_lab, failure
    from bench.distros.remote.lab import load_lab

    lab = load_lab(args.lab)
    modes = settings.resolve({"cut": args.cut}, names=("cut",))["cut"]
    print(f"lab {lab.path}: {lab.distro}, kubeconfig {lab.kubeconfig}", flush=True)
    reports = check_lab(lab, cut_modes=modes)
    for report in reports:
        status = "ok" if report.ok else "FAILED"
        print(f"{report.kind} {report.name}: {status}")
        for problem in report.problems:
            print(f"  problem: {problem}")
        if report.kind != "node":
            for note in report.notes:
                print(f"  {note}")
            continue
        node = lab.node(report.name)
        if report.ok:
            via = f" via {report.ssh_client[0]}" if report.ssh_client else ""
            print(f"  ssh: {node.ssh.spec}{' (sudo)' if node.ssh.sudo else ''}{via}")
            how = f" ({report.iptables}, dev {report.dev})" if report.iptables else ""
            print(f"  fault backend: {node.fault_backend}{how}")
        for note in report.notes:
            print(f"  {note}")
        for mode, rules in report.rules.items():
            print(f"  a cut ({mode}) would {report.rules_are}:")
            print("\n".join(f"    {line}" for line in rules.splitlines()))
    error = failure(reports)
    if error is not None:
        raise error
    nodes = sum(r.kind == "node" for r in reports)
    extra = " and the system controller" if len(reports) > nodes else ""
    print(f"lab {lab.path}: all {nodes} nodes{extra} pass", file=sys.stderr)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    lab = subparsers.add_parser("lab", help="existing clusters reached over SSH (lab files)")
    sub = lab.add_subparsers(dest="lab_command", metavar="COMMAND", required=True)
    check = sub.add_parser(
        "check",
        help="verify a lab file: kubeconfig, nodes Ready, SSH + sudo, fault tools; "
        "print what a cut would do, rules or Toxiproxy calls (nothing is applied)",
    )
    check.add_argument("lab", help="the lab file (docs/labs.md)")
    settings.add_arguments(check.add_argument, ("cut",))
    check.set_defaults(func=_check)
