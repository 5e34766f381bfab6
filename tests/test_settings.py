"""bench.settings: one table, command line over EDGEBENCH_* over the default, and the pytest
plugin generated from it (usage errors, report header, no run folder without a run)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from bench import settings
from bench.errors import UsageError
from bench.model import ClusterSpec

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")


def test_command_line_over_environment_over_default() -> None:
    env = {"EDGEBENCH_EDGE_NODES": "5", "EDGEBENCH_PROFILE": "default"}
    values = settings.resolve({"edge_nodes": "2"}, env)
    assert values["edge_nodes"] == 2  # command line wins
    assert values["profile"] == "default"  # then the environment
    assert values["distro"] == "kwok" and values["repeat"] == 1  # then the default
    assert values["provider"] == "local"  # filled in from the distro
    assert values["cut"] == ("blackhole",) and values["netns"] is None


def test_every_setting_has_an_env_var_help_and_a_unique_flag() -> None:
    flags = [s.flag for s in settings.SETTINGS]
    assert len(set(flags)) == len(flags)
    for s in settings.SETTINGS:
        assert s.env == "EDGEBENCH_" + s.name.upper() and s.help
        assert s.env in s.full_help()


@pytest.mark.parametrize(
    ("given", "env", "message"),
    [
        (
            {"distro": "k3z"},
            {},
            "--distro: unknown distro 'k3z'; valid distros: k3s, kubeedge, kwok",
        ),
        ({}, {"EDGEBENCH_DISTRO": "k3z"}, "EDGEBENCH_DISTRO: unknown distro 'k3z'"),
        ({"edge_nodes": "0"}, {}, "--edge-nodes: must be between 1 and 500, got 0"),
        ({}, {"EDGEBENCH_EDGE_NODES": "0"}, "EDGEBENCH_EDGE_NODES: must be between 1 and 500"),
        ({"edge_nodes": "three"}, {}, "--edge-nodes: 'three' is not a whole number"),
        ({"repeat": "0"}, {}, "--repeat: must be at least 1"),
        ({"cut": "reset,drop"}, {}, "unknown cut mode 'drop'; valid cut modes: blackhole, reset"),
        ({"cut": ","}, {}, "--cut needs at least one of: blackhole, reset"),
        ({"profile": "slow"}, {}, "valid profiles: fast, default"),
        ({"cluster_name": "Demo_1"}, {}, "--cluster-name: 'Demo_1' must be 1 to 42 lower-case"),
        ({"run_id": "a/b"}, {}, "--run-id: 'a/b' must be a folder name"),
        ({"provider": "podman"}, {}, "no provider 'podman'; valid providers: docker, local"),
        ({}, {"EDGEBENCH_NETNS": "maybe"}, "EDGEBENCH_NETNS: 'maybe' is not one of"),
    ],
)
def test_invalid_values_name_the_source_and_the_valid_values(
    given: dict[str, str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        settings.resolve(given, env)


def test_cut_is_a_comma_list_and_netns_a_boolean() -> None:
    values = settings.resolve({"cut": "blackhole, reset,blackhole"}, {"EDGEBENCH_NETNS": "no"})
    assert values["cut"] == ("blackhole", "reset") and values["netns"] is False


def test_default_cluster_name_is_unique_per_run_and_valid() -> None:
    a = settings.default_cluster_name("20261127T181716Z-a1b2c3")
    b = settings.default_cluster_name("20261127T181716Z-d4e5f6")
    assert a != b and a.startswith("eb-") and a.endswith("a1b2c3")
    for run_id in ("20261127T181716Z-a1b2c3", "My Run!!" * 10, "---", "x" * 100):
        name = settings.default_cluster_name(run_id)
        assert _NAME.match(name), name
        ClusterSpec(name=name)  # the driver accepts it


# --- the pytest plugin --------------------------------------------------------------------


@pytest.fixture
def plugin(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester project that loads the whole plugin (as the pytest11 entry point does)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    for name in [n for n in __import__("os").environ if n.startswith("EDGEBENCH_")]:
        monkeypatch.delenv(name)
    pytester.makeini("[pytest]\naddopts = -p no:edgebench -p bench.plugin -p no:cacheprovider\n")
    return pytester


def test_conftest_override_of_distro_name_reaches_the_cluster_fixtures(
    plugin: pytest.Pytester,
) -> None:
    plugin.makeconftest(
        "import pytest\n"
        "@pytest.fixture(scope='session')\n"
        "def distro_name():\n    return 'vanilla'\n"
        "@pytest.fixture(scope='session')\n"
        "def edge_node_count():\n    return 2\n"
    )
    plugin.makepyfile(
        "def test_x(distro_class, provider_name, cluster_spec, recorder):\n"
        "    assert distro_class.name == 'vanilla' and provider_name == 'local'\n"
        "    assert cluster_spec.edge_nodes == 2 and cluster_spec.name.startswith('eb-')\n"
        "    recorder.record(scenario='s', case='c', metric_name='detect_s', value=1)\n"
    )
    result = plugin.runpytest_subprocess(
        "--distro=kwok", f"--results-dir={plugin.path / 'r'}", "--run-id=o"
    )
    result.assert_outcomes(passed=1)
    with (plugin.path / "r" / "o" / "measurements.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["distro"] for r in rows] == ["vanilla"]


def test_environment_and_command_line_reach_the_fixtures(
    plugin: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGEBENCH_EDGE_NODES", "4")
    monkeypatch.setenv("EDGEBENCH_CUT", "blackhole")
    plugin.makepyfile(
        "def test_x(edge_node_count, cut_modes, cluster_name, netns, profile):\n"
        "    assert (edge_node_count, cut_modes, netns) == (4, ('blackhole',), False)\n"
        "    assert cluster_name == 'mine' and profile == 'default'\n"
    )
    result = plugin.runpytest_subprocess(
        "--cluster-name=mine", "--no-netns", "--profile=default", f"--results-dir={plugin.path}"
    )
    result.assert_outcomes(passed=1)


def test_each_session_gets_its_own_cluster_name(plugin: pytest.Pytester) -> None:
    plugin.makepyfile(
        "def test_x(cluster_name, pytestconfig):\n    print('NAME=' + cluster_name)\n"
    )
    names = []
    for _ in range(2):
        result = plugin.runpytest_subprocess("-s", f"--results-dir={plugin.path / 'r'}")
        result.assert_outcomes(passed=1)
        names += re.findall(r"NAME=(\S+)", result.stdout.str())
    assert len(names) == 2 and names[0] != names[1]
    assert all(_NAME.match(n) and n.startswith("eb-") for n in names)


@pytest.mark.parametrize(
    ("args", "status", "stderr"),
    [
        (["--help"], pytest.ExitCode.OK, ""),
        (["--collect-only"], pytest.ExitCode.OK, ""),
        (["--distro=k3z"], pytest.ExitCode.USAGE_ERROR, "*valid distros: k3s, kubeedge, kwok*"),
        (["--edge-nodes=0"], pytest.ExitCode.USAGE_ERROR, "*between 1 and 500*"),
        (["--cut=drop"], pytest.ExitCode.USAGE_ERROR, "*valid cut modes: blackhole, reset*"),
    ],
    ids=["help", "collect-only", "unknown-distro", "bad-edge-nodes", "bad-cut"],
)
def test_no_run_folder_without_a_run(
    plugin: pytest.Pytester, args: list[str], status: pytest.ExitCode, stderr: str
) -> None:
    plugin.makepyfile("def test_x(recorder): pass")
    results = plugin.path / "res"
    result = plugin.runpytest_subprocess(f"--results-dir={results}", *args)
    assert result.ret == status
    if stderr:
        result.stderr.fnmatch_lines([stderr])
    assert not results.exists(), list(results.rglob("*"))


def test_report_header_and_run_folder_of_a_run(plugin: pytest.Pytester) -> None:
    plugin.makepyfile("def test_x(recorder): pass")
    result = plugin.runpytest_subprocess(
        f"--results-dir={plugin.path / 'res'}", "--run-id=r1", "--edge-nodes=2",
        "--distro=vanilla", "--profile=default",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "edgebench: distro vanilla, provider local, profile default, 2 edge nodes",
            f"edgebench run folder: {plugin.path / 'res' / 'r1'}",
        ]
    )
    assert (plugin.path / "res" / "r1" / "run.json").exists()


def test_edgebench_up_options_come_from_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.cli import main

    with pytest.raises(SystemExit):
        main(["up", "--help"])
    out = capsys.readouterr().out
    for flag in ("--distro", "--provider", "--profile", "--edge-nodes", "--name"):
        assert flag in out
    assert "EDGEBENCH_EDGE_NODES" in out and "default edgebench" in out
    assert main(["up", "--distro", "k3z"]) == 2
    assert "valid distros: k3s, kubeedge, kwok, starlingx, vanilla" in capsys.readouterr().err
    assert main(["up", "--edge-nodes", "0"]) == 2


def test_report_and_compare_find_run_ids_under_the_results_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from bench.cli import main

    data = ROOT / "tests" / "data"
    shutil.copytree(data / "history_new", tmp_path / "res" / "new-run")
    shutil.copy(data / "history_new" / "measurements.csv", tmp_path / "base.csv")
    monkeypatch.chdir(tmp_path)
    status = main(["compare", "base.csv", "new-run", "--results-dir", "res", "--format", "json"])
    assert status == 0, capsys.readouterr().err
    monkeypatch.setenv("EDGEBENCH_RESULTS_DIR", str(tmp_path / "res"))
    assert main(["compare", "base.csv", "new-run", "--format", "json"]) == 0
    monkeypatch.delenv("EDGEBENCH_RESULTS_DIR")
    assert main(["compare", "base.csv", "new-run"]) == 2  # results/new-run does not exist
    assert "new-run" in capsys.readouterr().err


def test_k3s_without_a_lab_says_how_to_run_it() -> None:
    assert settings.resolve({"distro": "k3s"}, {})["provider"] == "docker"  # the default
    with pytest.raises(UsageError) as info:
        settings.resolve({"distro": "k3s", "provider": "remote"}, {})
    assert str(info.value) == (
        "distro 'k3s' runs against a cluster you already have: pytest suites/ --distro=k3s "
        "--provider=remote --lab lab.yaml (lab file: docs/labs.md; check it with edgebench lab "
        "check lab.yaml), or --distro=k3s --provider=docker to start it in containers on this "
        "machine where the docker provider is installed"
    )
    values = settings.resolve({"distro": "k3s", "lab": "lab.yaml"}, {})
    assert (values["provider"], values["lab"]) == ("remote", Path("lab.yaml"))
