"""The scenario shape as code: fault windows journaled by the link itself, rows of a failed
case kept (empty, with the failure), and cases skipped at collection for absent abilities."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest
from kubernetes import client

from bench.faults import Toxiproxy
from bench.model import EdgeNode
from bench.observe.watch import ClusterObserver
from bench.results.records import EventJournal, Recorder, RunContext
from bench.scenario.run import ScenarioRun
from tests.echo import EchoServer

pytest_plugins = ["pytester"]


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.integration
def test_a_failing_case_leaves_its_fault_window_and_its_rows(
    toxiproxy: Toxiproxy, tmp_path: Path
) -> None:
    with EchoServer() as echo:
        link = toxiproxy.link("edge-0", echo.address)
        try:
            node = EdgeNode("edge-0", link, {echo.address: link.listen})
            cluster = SimpleNamespace(edge_nodes=[node], CAPABILITIES=frozenset(), LACKS={})
            ctx = RunContext("r", "t", "kwok", "local", "fast")
            run = ScenarioRun(
                cluster=cluster,  # type: ignore[arg-type]  # links are all this test needs
                observer=ClusterObserver(client.ApiClient()),  # never started
                recorder=Recorder(tmp_path, ctx),
                journal=EventJournal(tmp_path, "r"),
                scenario="offline_autonomy",
                case="long-evictable/blackhole",
                repeat=0,
            )
            run.expect(["detect_s", "stable_recover_s"], ["edge-0"])
            with pytest.raises(RuntimeError), link.cut(mode="blackhole"):
                raise RuntimeError("the agent crashed")
            run.finish("RuntimeError: the agent crashed")
        finally:
            toxiproxy.remove_link("edge-0")
    events = rows(tmp_path / "events.csv")
    window = [(e["kind"], e["value"]) for e in events if e["kind"].startswith("fault")]
    assert window == [
        ("fault_start", "cut/blackhole via toxiproxy"),
        ("fault_end", "cut/blackhole via toxiproxy"),
    ]
    measured = [
        r
        for r in rows(tmp_path / "measurements.csv")
        if r["metric"] in ("detect_s", "stable_recover_s")
    ]
    assert sorted(r["metric"] for r in measured) == ["detect_s", "stable_recover_s"]
    for row in measured:
        assert row["value"] == ""
        assert "case failed: RuntimeError: the agent crashed" in row["note"]
        assert "cut/blackhole via toxiproxy" in row["note"]
    assert run._on_fault not in link.listeners  # the case stopped listening


@pytest.fixture
def plugin(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\naddopts = -p no:edgebench -p bench.plugin -p no:cacheprovider\n")
    return pytester


def test_a_case_needing_an_absent_ability_is_skipped_with_the_reason(
    plugin: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    plugin.makepyfile(
        "import pytest\n"
        "from bench.model import Capability\n"
        "@pytest.mark.requires(Capability.REAL_RUNTIME)\n"
        "def test_needs_containers(): pass\n"
        "@pytest.mark.requires('backend:docker')\n"
        "def test_needs_docker_links(): pass\n"
        "def test_plain(): pass\n"
    )
    result = plugin.runpytest("--distro=kwok", "--no-netns", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*kwok/local lacks real runtime: a fake container runtime in the agent process*",
            "*kwok/local lacks backend:docker: its links have no docker backend*",
        ]
    )


def test_under_ci_an_absence_without_a_reason_fails(
    plugin: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    plugin.makeconftest(
        "from bench.distros.local.kwok import KwokLocal\n"
        "KwokLocal.LACKS = {}  # as if a driver lost an ability and said nothing\n"
    )
    plugin.makepyfile(
        "import pytest\n"
        "from bench.model import Capability\n"
        "@pytest.mark.requires(Capability.REAL_RUNTIME)\n"
        "def test_x(): pass\n"
    )
    result = plugin.runpytest("--distro=kwok", "--no-netns")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*CI=true: kwok/local lacks real runtime and does not say why*"])
