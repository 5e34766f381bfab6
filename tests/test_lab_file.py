"""The lab file: typed values, defaults, and errors naming the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.distros.remote.lab import LabError, load_lab, parse_lab
from bench.faults.kernel import Endpoint

GOOD = """\
distro: k3s
kubeconfig: k3s.yaml          # relative to the lab file
context: plant-a
nodes:
  - name: pi-1
    host: ssh://pi@10.0.0.21:2222
    identity_file: keys/id_ed25519
    sudo: true
    jump_host: admin@bastion.example
    endpoints:
      - {address: 10.0.0.10, ports: [6443]}
      - address: 10.0.0.0/29
        ports: [8472]
        protocol: udp
  - name: pi-2
    host: ssh://pi@10.0.0.22
    agent: k3s-agent-custom
    endpoints: [{address: 10.0.0.10, ports: [6443]}]
timings:
  node_monitor_grace_period_s: 20
"""


TOXI = "    fault_backend: toxiproxy\n    toxiproxy_api: http://10.0.0.5:8474\n"


def parse(text: str) -> object:
    return parse_lab(text, Path("/labs/lab.yaml"))


def error(text: str) -> str:
    with pytest.raises(LabError) as info:
        parse(text)
    assert info.value.exit_status == 2
    return str(info.value)


def test_a_good_lab_file_is_typed_with_defaults() -> None:
    lab = parse_lab(GOOD, Path("/labs/lab.yaml"))
    assert lab.distro == "k3s" and lab.context == "plant-a"
    assert lab.kubeconfig == Path("/labs/k3s.yaml")
    assert lab.workload_image == "registry.k8s.io/pause:3.10"
    assert lab.runtime == "real" and lab.allow_reboot is False
    assert dict(lab.timings) == {"node_monitor_grace_period_s": 20.0}
    one, two = lab.nodes
    assert one.ssh.spec == "ssh://pi@10.0.0.21:2222" and one.ssh.sudo
    assert one.ssh.identity_file == Path("/labs/keys/id_ed25519")
    assert (one.ssh.address, one.ssh.port) == ("10.0.0.21", 2222)
    assert "-J admin@bastion.example" in one.ssh.ssh_extra_args()
    assert one.endpoints == (
        Endpoint("10.0.0.10", (6443,)),
        Endpoint("10.0.0.0/29", (8472,), "udp"),
    )
    assert one.fault_backend == "iptables"
    assert (one.agent, one.restart) == ("k3s-agent", "systemctl restart k3s-agent")
    assert (one.reboot, one.agent_active, lab.reboot_timeout_s) == (
        "systemctl reboot || reboot",
        "systemctl is-active --quiet k3s-agent",
        600.0,
    )
    assert (two.agent, two.ssh.port, two.ssh.sudo) == ("k3s-agent-custom", 22, False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "/labs/lab.yaml: empty lab file; see docs/labs.md for an example"),
        (
            "distro: [k3s\n",
            "/labs/lab.yaml:2: not valid YAML: expected ',' or ']', but got '<stream end>'",
        ),
        (
            GOOD.replace("ports: [6443]}\n      - address", "ports: [70000]}\n      - address"),
            "/labs/lab.yaml:11: nodes[0].endpoints[0].ports[0]: 70000 is not a port 1..65535",
        ),
        (
            GOOD.replace("    sudo: true", "    sudo: yes please"),
            "/labs/lab.yaml:8: nodes[0].sudo: must be true or false, got 'yes please' (str)",
        ),
        (
            GOOD.replace("ssh://pi@10.0.0.22", "ssh://pi:hunter2@10.0.0.22"),
            "/labs/lab.yaml:16: nodes[1].host: no passwords in the lab file; use identity_file "
            "(a key) instead",
        ),
        (
            GOOD.replace("    agent: k3s", "    agnet: k3s"),
            "/labs/lab.yaml:17: nodes[1].agnet: unknown key; valid keys here: agent, "
            "agent_active_command, boot_id_command, chain, connect_timeout_s, dev, endpoints, "
            "fault_backend, host, identity_file, jump_host, known_hosts, name, pods_url, "
            "reboot_command, restart_command, ssh_config, sudo, toxiproxy_api, toxiproxy_proxy",
        ),
        (
            GOOD.replace("  - name: pi-2\n", "  - name: pi-1\n"),
            "/labs/lab.yaml:15: nodes[1].name: 'pi-1' is listed twice (also nodes[0])",
        ),
        (
            GOOD.replace("    endpoints: [{address: 10.0.0.10, ports: [6443]}]\n", ""),
            "/labs/lab.yaml:15: nodes[1].endpoints: the iptables backend cuts only the listed "
            "control-plane endpoints; list at least one (address and ports its agent dials)",
        ),
        (
            GOOD.replace("{address: 10.0.0.10, ports: [6443]}]", "{address: pi-server}]"),
            "/labs/lab.yaml:18: nodes[1].endpoints[0].address: endpoint address 'pi-server' is "
            "not an IPv4 address or CIDR",
        ),
        (
            GOOD.replace("distro: k3s", "distro: microk8s").replace(
                "timings:\n  node_monitor_grace_period_s: 20\n", ""
            ),
            "/labs/lab.yaml:1: distro: 'microk8s' is not one of k3s, kubeedge, starlingx, "
            "vanilla, kwok; another name needs explicit timings: (see docs/labs.md)",
        ),
        (
            GOOD.replace("kubeconfig: k3s.yaml          # relative to the lab file\n", ""),
            "/labs/lab.yaml:1: kubeconfig: required (a string)",
        ),
        (
            GOOD + "system_controller:\n  host: ssh://sysadmin@10.10.10.2\n  subcloud: sc1\n"
            "  password_env: Li69nux*\n",
            "/labs/lab.yaml:24: system_controller.password_env: 'Li69nux*' is not an environment "
            "variable's name (the name of the variable holding the password goes here, never "
            "the password)",
        ),
        (
            "reboot_timeout_s: 0\n" + GOOD,
            "/labs/lab.yaml:1: reboot_timeout_s: must be > 0, got 0",
        ),
        (
            GOOD + "  node_lease_duration_s: -1\n",
            "/labs/lab.yaml:21: timings.node_lease_duration_s: must be >= 0, got -1",
        ),
        (
            GOOD.replace("    sudo: true\n", "    sudo: true\n    fault_backend: toxiproxy\n"),
            "/labs/lab.yaml:5: nodes[0].toxiproxy_api: required with fault_backend: toxiproxy "
            "(http://host:8474)",
        ),
        (
            GOOD.replace("    sudo: true\n", TOXI + "    toxiproxy_proxy: [pi-1.api]\n").replace(
                "toxiproxy_api: http://10.0.0.5:8474", "toxiproxy_api: 10.0.0.5:8474"
            ),
            "/labs/lab.yaml:9: nodes[0].toxiproxy_api: '10.0.0.5:8474' is not http://host:port "
            "(Toxiproxy's API, e.g. :8474)",
        ),
        (
            GOOD.replace("    sudo: true\n", TOXI),
            "/labs/lab.yaml:5: nodes[0].toxiproxy_proxy: required with fault_backend: toxiproxy: "
            "the name of the proxy (or a list of names) the node's agent reaches its control "
            "plane through",
        ),
        (
            GOOD.replace("    sudo: true\n", TOXI + "    toxiproxy_proxy: [ok, a/b]\n"),
            "/labs/lab.yaml:10: nodes[0].toxiproxy_proxy[1]: 'a/b' is not a proxy name "
            "(letters, digits, '.', '_', '-')",
        ),
        (
            GOOD.replace("    agent: k3s-agent-custom\n", "    toxiproxy_api: http://t:8474\n"),
            "/labs/lab.yaml:17: nodes[1].toxiproxy_api: only with fault_backend: toxiproxy "
            "(this node's is iptables)",
        ),
        (
            GOOD.replace("    sudo: true\n", TOXI + "    toxiproxy_proxy: pi\n").replace(
                "    agent: k3s-agent-custom\n", TOXI + "    toxiproxy_proxy: pi\n"
            ),
            "/labs/lab.yaml:21: nodes[1].toxiproxy_proxy: proxy 'pi' is also nodes[0]'s; a cut "
            "of one node would cut the other",
        ),
    ],
)
def test_errors_name_the_line_and_the_key(text: str, message: str) -> None:
    assert error(text) == message


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"cannot read lab file .*/nope.yaml: No such file"):
        load_lab(tmp_path / "nope.yaml")


def test_toxiproxy_and_none_nodes_need_no_endpoints() -> None:
    text = GOOD.replace(
        "    endpoints:\n      - {address: 10.0.0.10, ports: [6443]}\n"
        "      - address: 10.0.0.0/29\n        ports: [8472]\n        protocol: udp\n",
        TOXI + "    toxiproxy_proxy: [pi-1-api, pi-1.tunnel]\n",
    ).replace("    endpoints: [{address: 10.0.0.10, ports: [6443]}]\n", "    fault_backend: none\n")
    one, two = parse_lab(text, Path("/labs/lab.yaml")).nodes
    assert (one.fault_backend, one.toxiproxy_api) == ("toxiproxy", "http://10.0.0.5:8474")
    assert one.toxiproxy_proxies == ("pi-1-api", "pi-1.tunnel") and one.endpoints == ()
    assert (two.fault_backend, two.toxiproxy_proxies, two.endpoints) == ("none", (), ())
