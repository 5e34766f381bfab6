"""``edgebench lab check`` against real throw-away sshds on this machine: a good lab, and the
broken ones (unreachable host, wrong key, node not in the cluster, endpoints that would cut
the SSH path, no iptables on the node), each with its exact message."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd_support import require_sshd

from bench.cli import main
from bench.distros.remote.check import check_lab, check_node, failure
from bench.distros.remote.lab import Lab, parse_lab
from bench.distros.remote.sshd import Keys, Sshd
from bench.procs import free_port

#: what a node without iptables still has (symlinked into its PATH)
BASIC_TOOLS = ("sh", "id", "cat", "ip", "ss", "setsid", "sed", "true", "tc")


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Keys, int, int]]:
    require_sshd()
    folder = tmp_path_factory.mktemp("lab")
    keys = Keys(folder / "keys").make()
    fakebin = folder / "bin"
    fakebin.mkdir()
    for tool in BASIC_TOOLS:
        found = shutil.which(tool)
        if found:
            (fakebin / tool).symlink_to(found)
    good = Sshd(folder, keys, "127.0.0.1", free_port(), name="good").start()
    bare = Sshd(folder, keys, "127.0.0.1", free_port(), env={"PATH": str(fakebin)},
                name="bare").start()  # fmt: skip
    try:
        yield folder, keys, good.port, bare.port
    finally:
        good.stop()
        bare.stop()


def lab(folder: Path, keys: Keys, nodes: str) -> Lab:
    text = f"distro: vanilla\nkubeconfig: {folder}/missing-kubeconfig\nnodes:\n{nodes}"
    return parse_lab(text, folder / "lab.yaml")


def node(name: str, port: int, keys: Keys, endpoint: str = "{address: 10.254.0.1, ports: [6443]}",
         key: Path | None = None) -> str:  # fmt: skip
    return (
        f"  - name: {name}\n"
        f"    host: ssh://root@127.0.0.1:{port}\n"
        f"    identity_file: {key or keys.client_key}\n"
        f"    known_hosts: {keys.known_hosts}\n"
        f"    endpoints: [{endpoint}]\n"
    )


def test_a_good_lab_passes_and_shows_the_rules_of_a_cut(
    lab_dir: tuple[Path, Keys, int, int],
) -> None:
    folder, keys, good, _ = lab_dir
    reports = check_lab(lab(folder, keys, node("edge-0", good, keys)), {"edge-0": True})
    assert failure(reports) is None
    (report,) = reports
    assert report.ssh_client is not None and report.ssh_client[0] == "127.0.0.1"
    assert report.iptables in ("iptables-nft", "iptables-legacy", "iptables")
    ipt = report.iptables
    assert report.rules["blackhole"].splitlines()[1:] == [
        "*filter",
        ":EDGEBENCH-IN - [0:0]",
        ":EDGEBENCH-OUT - [0:0]",
        "-A EDGEBENCH-IN -s 10.254.0.1/32 -p tcp -m multiport --sports 6443 -j DROP",
        "-A EDGEBENCH-OUT -d 10.254.0.1/32 -p tcp -m multiport --dports 6443 -j DROP",
        "COMMIT",
        "EOF",
        f"{ipt} -w -I INPUT 1 -j EDGEBENCH-IN",
        f"{ipt} -w -I OUTPUT 1 -j EDGEBENCH-OUT",
    ]
    assert (
        report.rules["reset"].splitlines()[-1] == "ss -K -tn dst 10.254.0.1/32 '( dport = :6443 )'"
    )


def test_an_unreachable_host(lab_dir: tuple[Path, Keys, int, int]) -> None:
    folder, keys, _, _ = lab_dir
    closed = free_port()
    reports = check_lab(lab(folder, keys, node("edge-0", closed, keys)), {"edge-0": True})
    assert str(failure(reports)) == (
        f"lab check failed: node edge-0: SSH to ssh://root@127.0.0.1:{closed} failed: "
        "Connection refused"
    )


def test_a_wrong_key(lab_dir: tuple[Path, Keys, int, int]) -> None:
    folder, keys, good, _ = lab_dir
    wrong = keys.host_key  # a valid key, but not an authorized one
    reports = check_lab(lab(folder, keys, node("edge-0", good, keys, key=wrong)), {"edge-0": True})
    assert str(failure(reports)) == (
        f"lab check failed: node edge-0: SSH to ssh://root@127.0.0.1:{good} failed: "
        "Permission denied (publickey)."
    )


def test_a_node_not_in_the_cluster(lab_dir: tuple[Path, Keys, int, int]) -> None:
    folder, keys, good, _ = lab_dir
    the_lab = lab(folder, keys, node("edge-9", good, keys))
    report = check_node(the_lab, the_lab.nodes[0], {"edge-0": True, "edge-1": False})
    assert report.problems == ["not a node of the cluster (its nodes: edge-0, edge-1)"]
    the_lab = lab(folder, keys, node("edge-1", good, keys))
    report = check_node(the_lab, the_lab.nodes[0], {"edge-0": True, "edge-1": False})
    assert report.problems == ["is not Ready in the cluster"]


def test_endpoints_that_would_cut_the_ssh_path(lab_dir: tuple[Path, Keys, int, int]) -> None:
    folder, keys, good, _ = lab_dir
    for endpoint in ("{address: 127.0.0.0/8}", "{address: 127.0.0.1, ports: [6443, 40000]}"):
        the_lab = lab(folder, keys, node("edge-0", good, keys, endpoint=endpoint))
        report = check_node(the_lab, the_lab.nodes[0], {"edge-0": True})
        shown = endpoint.split("address: ")[1].split("}")[0].split(",")[0]
        ports = ":6443,40000" if "ports" in endpoint else ""
        assert report.problems == [
            f"endpoint {'127.0.0.0/8' if shown.endswith('/8') else '127.0.0.1/32'}{ports} would "
            "cut the SSH path (the harness reaches the node from 127.0.0.1); list the "
            "control-plane endpoints only"
        ]
    # a port outside the ephemeral range (the API server's) leaves SSH alone
    the_lab = lab(
        folder, keys, node("edge-0", good, keys, endpoint="{address: 127.0.0.1, ports: [6443]}")
    )
    assert check_node(the_lab, the_lab.nodes[0], {"edge-0": True}).problems == []


def test_a_node_without_iptables(lab_dir: tuple[Path, Keys, int, int]) -> None:
    folder, keys, _, bare = lab_dir
    reports = check_lab(lab(folder, keys, node("edge-0", bare, keys)), {"edge-0": True})
    assert str(failure(reports)) == (
        "lab check failed: node edge-0: fault_backend iptables needs iptables-nft or "
        "iptables-legacy or iptables (with its -restore) on the node; none found "
        "(Debian: apt-get install iptables)"
    )
    assert reports[0].rules == {}


def test_the_cli_exits_2_when_the_kubeconfig_fails(
    lab_dir: tuple[Path, Keys, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, keys, good, _ = lab_dir
    path = folder / "cli-lab.yaml"
    path.write_text(
        f"distro: vanilla\nkubeconfig: {folder}/missing-kubeconfig\nnodes:\n"
        + node("edge-0", good, keys)
    )
    assert main(["lab", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"edgebench: error: kubeconfig {folder}/missing-kubeconfig: cannot list the cluster's "
        "nodes: "
    )
