"""Lab nodes with ``fault_backend: toxiproxy`` (the user's own Toxiproxy, here a real
toxiproxy-server on loopback with proxies made as a user would) and ``fault_backend: none``
(observed, never faulted): ``lab check`` shows what a cut would do and changes nothing, the
driver cuts through the user's proxies and removes only its own toxics, and what a mixed lab
can do is what every node can do (cases needing a cut are skipped at collection, saying why).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from echo import EchoServer, connect, round_trip
from sshd_support import require_sshd

from bench.cli import main
from bench.distros.remote import check as check_module
from bench.distros.remote import drivers
from bench.distros.remote.check import check_lab, failure
from bench.distros.remote.drivers import RemoteSettings, VanillaRemote, _link_for
from bench.distros.remote.lab import Lab, parse_lab
from bench.distros.remote.sshd import Keys, Sshd
from bench.errors import NotSupportedError
from bench.faults import FaultKind, Toxiproxy, ToxiproxyLink
from bench.model import ClusterSpec
from bench.procs import free_port

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Keys, int]]:
    require_sshd()
    folder = tmp_path_factory.mktemp("lab")
    keys = Keys(folder / "keys").make()
    server = Sshd(folder, keys, "127.0.0.1", free_port(), name="node").start()
    try:
        yield folder, keys, server.port
    finally:
        server.stop()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture
def user_proxy(
    clean_links: Toxiproxy, echo: EchoServer, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A proxy the *user* made on their Toxiproxy (not through edgebench), with a toxic of
    their own: edgebench must cut through it and leave both in place."""
    api = clean_links._api
    name = f"agent-{request.node.name[:30]}".replace("[", "-").replace("]", "")
    api.call("POST", "/proxies", {"name": name, "listen": "127.0.0.1:0", "upstream": echo.address})
    user_toxic = {
        "name": "user_slow",
        "type": "latency",
        "stream": "downstream",
        "attributes": {"latency": 1},
    }
    api.call("POST", f"/proxies/{name}/toxics", user_toxic)
    try:
        yield name
    finally:
        api.call_status("DELETE", f"/proxies/{name}")


def node_yaml(name: str, port: int, keys: Keys, backend: str) -> str:
    return (
        f"  - name: {name}\n"
        f"    host: ssh://root@127.0.0.1:{port}\n"
        f"    identity_file: {keys.client_key}\n"
        f"    known_hosts: {keys.known_hosts}\n"
        f"{backend}"
    )


def toxiproxy_backend(tp: Toxiproxy, proxy: str) -> str:
    return (
        f"    fault_backend: toxiproxy\n    toxiproxy_api: {tp.url}\n    toxiproxy_proxy: {proxy}\n"
    )


NONE = "    fault_backend: none\n"
KERNEL = "    endpoints: [{address: 10.254.0.1, ports: [6443]}]\n"


def make_lab(folder: Path, nodes: str, name: str = "lab.yaml") -> Lab:
    path = folder / name
    path.write_text(f"distro: vanilla\nkubeconfig: {folder}/missing-kubeconfig\nnodes:\n{nodes}")
    return parse_lab(path.read_text(), path)


def proxy_state(tp: Toxiproxy, proxy: str) -> tuple[bool, list[str]]:
    info = tp._api.call("GET", f"/proxies/{proxy}")
    return bool(info["enabled"]), sorted(t["name"] for t in info["toxics"])


def test_lab_check_shows_the_toxiproxy_calls_of_a_cut_and_applies_none(
    sshd: tuple[Path, Keys, int], clean_links: Toxiproxy, user_proxy: str, echo: EchoServer
) -> None:
    folder, keys, port = sshd
    lab = make_lab(
        folder,
        node_yaml("edge-0", port, keys, toxiproxy_backend(clean_links, user_proxy))
        + node_yaml("edge-1", port, keys, NONE),
    )
    reports = check_lab(lab, {"edge-0": True, "edge-1": True})
    assert failure(reports) is None, [r.problems for r in reports]
    toxi, none = reports
    assert toxi.rules_are == f"call {clean_links.url}"
    blackhole = [
        f"POST /proxies/{user_proxy}/toxics "
        + json.dumps(
            {
                "attributes": {"timeout": 0},
                "name": f"edgebench_blackhole_{s}",
                "stream": s,
                "toxicity": 1.0,
                "type": "timeout",
            }
        )
        for s in ("upstream", "downstream")
    ]
    assert toxi.rules["blackhole"].splitlines() == blackhole
    assert toxi.rules["reset"] == f'POST /proxies/{user_proxy} {{"enabled": false}}'
    listen = clean_links._api.call("GET", f"/proxies/{user_proxy}")["listen"]
    assert toxi.notes == [
        f"proxy {user_proxy}: {listen} -> {echo.address}",
        f"proxy {user_proxy} has toxics user_slow: left alone (edgebench adds and removes only "
        "edgebench_* toxics)",
    ]
    assert (none.rules, none.notes) == (
        {},
        ["fault_backend none: observed only; no fault is ever applied"],
    )
    assert proxy_state(clean_links, user_proxy) == (True, ["user_slow"])  # nothing applied


def test_the_cli_prints_what_a_cut_would_call(
    sshd: tuple[Path, Keys, int],
    clean_links: Toxiproxy,
    user_proxy: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, keys, port = sshd
    lab = make_lab(
        folder,
        node_yaml("edge-0", port, keys, toxiproxy_backend(clean_links, user_proxy)),
        "cli.yaml",
    )
    monkeypatch.setattr(check_module, "cluster_nodes", lambda lab: {"edge-0": True})
    assert main(["lab", "check", str(lab.path), "--cut", "reset"]) == 0
    out = capsys.readouterr().out.splitlines()
    start = out.index("  fault backend: toxiproxy")
    assert out[start + 3 :] == [
        f"  a cut (reset) would call {clean_links.url}:",
        f'    POST /proxies/{user_proxy} {{"enabled": false}}',
    ]


def test_lab_check_names_a_missing_and_a_disabled_proxy(
    sshd: tuple[Path, Keys, int], clean_links: Toxiproxy, user_proxy: str
) -> None:
    folder, keys, port = sshd
    missing = make_lab(
        folder, node_yaml("edge-0", port, keys, toxiproxy_backend(clean_links, "nope"))
    )
    (report,) = check_lab(missing, {"edge-0": True})
    assert report.problems == [
        f"toxiproxy at {clean_links.url} has no proxy nope (its proxies: {user_proxy})"
    ]
    clean_links._api.call("POST", f"/proxies/{user_proxy}", {"enabled": False})
    disabled = make_lab(
        folder, node_yaml("edge-0", port, keys, toxiproxy_backend(clean_links, user_proxy))
    )
    (report,) = check_lab(disabled, {"edge-0": True})
    assert report.problems == [
        f"toxiproxy proxy {user_proxy} is disabled: the agent cannot reach its control plane "
        "through it (a harness killed during a reset cut leaves it so); enable it first: curl "
        f"-X POST {clean_links.url}/proxies/{user_proxy} -d '{{\"enabled\": true}}'"
    ]
    # what a harness killed in a blackhole cut leaves: noted, and removed by the next restore
    clean_links._api.call("POST", f"/proxies/{user_proxy}", {"enabled": True})
    link = _link_for(disabled.nodes[0])
    link.cut("blackhole").apply()
    (report,) = check_lab(disabled, {"edge-0": True})
    assert report.problems == []
    assert report.notes[-1] == (
        f"proxy {user_proxy} has toxics edgebench_blackhole_downstream, "
        "edgebench_blackhole_upstream left by an earlier run: the first restore removes them"
    )
    _link_for(disabled.nodes[0]).restore()
    assert proxy_state(clean_links, user_proxy) == (True, ["user_slow"])


def test_a_toxiproxy_node_is_cut_through_the_users_proxy_which_stays_theirs(
    sshd: tuple[Path, Keys, int], clean_links: Toxiproxy, user_proxy: str
) -> None:
    folder, keys, port = sshd
    lab = make_lab(
        folder, node_yaml("edge-0", port, keys, toxiproxy_backend(clean_links, user_proxy))
    )
    cluster = VanillaRemote(
        ClusterSpec(name="wtr-toxi", provider_settings=RemoteSettings(lab.path))
    )
    link = cluster._make_link(lab.nodes[0])
    cluster._links["edge-0"] = link
    listen = clean_links._api.call("GET", f"/proxies/{user_proxy}")["listen"]
    with connect(listen) as sock:
        round_trip(sock)
        with link.cut("blackhole"):
            sock.settimeout(1.0)
            with pytest.raises(socket.timeout):
                round_trip(sock)  # the data is swallowed, the connection stays open
            assert proxy_state(clean_links, user_proxy)[1] == [
                "edgebench_blackhole_downstream",
                "edgebench_blackhole_upstream",
                "user_slow",
            ]
    with link.cut("reset"):
        assert proxy_state(clean_links, user_proxy)[0] is False
    with connect(listen) as sock:
        round_trip(sock)  # up again after the restore
    link.latency(50).apply()  # left on: down() must remove it, and only it
    assert "edgebench_latency_downstream_1" in proxy_state(clean_links, user_proxy)[1]
    link.reset_peer().apply()
    cluster._links["edge-0"].cut("reset").apply()
    cluster.down()
    assert proxy_state(clean_links, user_proxy) == (True, ["user_slow"])


def spec(lab: Lab) -> ClusterSpec:
    return ClusterSpec(name="wtr-caps", provider_settings=RemoteSettings(lab.path))


def test_a_mixed_lab_can_do_what_every_node_can_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = Keys(tmp_path / "unused")  # no SSH here: kernel probes are stood in below
    toxi = "    fault_backend: toxiproxy\n    toxiproxy_api: http://127.0.0.1:1\n"
    only_toxi = make_lab(
        tmp_path,
        node_yaml("a", 1, keys, toxi + "    toxiproxy_proxy: a\n")
        + node_yaml("b", 1, keys, toxi + "    toxiproxy_proxy: b\n"),
        "t.yaml",
    )
    assert VanillaRemote.link_faults(spec(only_toxi)) == ToxiproxyLink.CAPABILITIES
    assert VanillaRemote.link_backends(spec(only_toxi)) == {"toxiproxy"}
    assert VanillaRemote.lacks("backend:toxiproxy", spec(only_toxi)) is None
    assert VanillaRemote.lacks(FaultKind.LOSS, spec(only_toxi)) == (
        "not every lab node's link can do loss: a (fault_backend: toxiproxy); "
        "b (fault_backend: toxiproxy)"
    )

    mixed = make_lab(
        tmp_path,
        node_yaml("k", 1, keys, KERNEL)
        + node_yaml("t", 1, keys, toxi + "    toxiproxy_proxy: t\n"),
        "m.yaml",
    )
    kernel = frozenset(
        {FaultKind.CUT_BLACKHOLE, FaultKind.CUT_RESET, FaultKind.LOSS, FaultKind.LATENCY}
    )
    monkeypatch.setitem(drivers._PROBED, (mixed.path.resolve(), "k"), kernel)
    assert VanillaRemote.link_faults(spec(mixed)) == {
        FaultKind.CUT_BLACKHOLE,
        FaultKind.CUT_RESET,
        FaultKind.LATENCY,
    }
    assert VanillaRemote.link_backends(spec(mixed)) == frozenset()
    assert VanillaRemote.lacks("backend:kernel", spec(mixed)) == (
        "not every lab node's link can do a kernel link: t (fault_backend: toxiproxy)"
    )
    assert VanillaRemote.lacks(FaultKind.CUT_RESET, spec(mixed)) is None

    observed = make_lab(
        tmp_path,
        node_yaml("t", 1, keys, toxi + "    toxiproxy_proxy: t\n") + node_yaml("o", 1, keys, NONE),
        "o.yaml",
    )
    assert VanillaRemote.link_faults(spec(observed)) == frozenset()
    assert VanillaRemote.lacks(FaultKind.CUT_BLACKHOLE, spec(observed)) == (
        "not every lab node's link can do cut:blackhole: o (fault_backend: none (edgebench "
        "observes the node and never faults it))"
    )


def test_a_none_node_refuses_every_fault_and_restores_as_a_no_op(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, node_yaml("o", 1, Keys(tmp_path), NONE))
    link = _link_for(lab.nodes[0])
    assert (link.backend, link.capabilities()) == ("none", frozenset())
    with pytest.raises(
        NotSupportedError,
        match=r"link o cannot do cut:reset: lab node o: "
        r"fault_backend: none \(edgebench observes",
    ):
        link.cut("reset")
    link.restore()


def test_cut_cases_are_skipped_at_collection_on_a_lab_that_cannot_cut(
    sshd: tuple[Path, Keys, int], pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, keys, port = sshd
    lab = make_lab(folder, node_yaml("edge-0", port, keys, NONE), "collect.yaml")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest(
        "pytest_plugins = ['bench.source_checkout', 'edgebench_fixtures.options', "
        "'edgebench_fixtures.results', 'edgebench_fixtures.capabilities', "
        "'edgebench_fixtures.scenario']\n"
    )
    pytester.makepyfile("def test_cut(cut_mode): pass\n\ndef test_observe(): pass\n")
    result = pytester.runpytest_subprocess(
        "--provider=remote",
        f"--lab={lab.path}",
        "--distro=vanilla",
        "--cut=blackhole,reset",
        "-rs",
        f"--results-dir={pytester.path / 'res'}",
    )
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*vanilla/remote lacks cut:blackhole: not every lab node's link can do cut:blackhole: "
            "edge-0 (fault_backend: none (edgebench observes the node and never faults it))*",
            "*vanilla/remote lacks cut:reset: *",
        ]
    )


def test_up_removes_what_a_killed_run_left_on_a_toxiproxy_node(
    sshd: tuple[Path, Keys, int],
    clean_links: Toxiproxy,
    user_proxy: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No dead-man timer on a Toxiproxy: toxics of a run killed mid-cut would keep the first
    case of the next run cut, so ``up()`` restores every Toxiproxy node's link (its toxics
    only; the user's stay)."""
    folder, keys, port = sshd
    node = node_yaml("edge-0", port, keys, toxiproxy_backend(clean_links, user_proxy))
    lab = make_lab(folder, node, name="leftover.yaml")  # (a lab file is read once per path)
    _link_for(lab.nodes[0]).cut("blackhole").apply()  # the killed run's cut, never undone
    assert proxy_state(clean_links, user_proxy)[1] != ["user_slow"]
    # up() without a cluster: the lab check and the API server are not what is tested here
    monkeypatch.setattr(drivers, "check_lab", lambda lab: [])
    monkeypatch.setattr(VanillaRemote, "_server_version", lambda self: "v1.0.0")
    monkeypatch.setattr(VanillaRemote, "_read_timings", lambda self: None)
    cluster = VanillaRemote(
        ClusterSpec(name="wtr-leftover", provider_settings=RemoteSettings(lab.path))
    )
    try:
        cluster.up()
        assert proxy_state(clean_links, user_proxy) == (True, ["user_slow"])
    finally:
        cluster.down()


def test_restoring_a_toxiproxy_link_goes_on_past_a_proxy_that_fails(
    clean_links: Toxiproxy, user_proxy: str, echo: EchoServer, caplog: pytest.LogCaptureFixture
) -> None:
    from bench.faults.toxiproxy import SharedToxiproxyLink

    api = clean_links._api
    gone = f"{user_proxy[:40]}-gone"
    api.call("POST", "/proxies", {"name": gone, "listen": "127.0.0.1:0", "upstream": echo.address})
    try:
        link = SharedToxiproxyLink.of(api, "edge-0", [gone, user_proxy])
        link.cut("blackhole").apply()
    finally:
        api.call_status("DELETE", f"/proxies/{gone}")  # the first proxy fails from here on
    link.restore()  # never raises
    assert proxy_state(clean_links, user_proxy) == (True, ["user_slow"])
    assert f"restoring toxiproxy proxy {gone} of link edge-0" in caplog.text
