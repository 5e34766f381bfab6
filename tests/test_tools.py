"""``edgebench tools``: clear errors, the cache, and a real build from a Go module."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.build import tools
from bench.cli import main
from bench.errors import BuildError, ToolchainMissingError, ToolError, UsageError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDGEBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _fake_install(ts: tools.ToolSet) -> None:
    ts.bin_dir.mkdir(parents=True, exist_ok=True)
    for binary in ts.binaries:
        ts.path(binary).write_text("#!/bin/sh\necho fake\n")
        ts.path(binary).chmod(0o755)


def test_unknown_tool_lists_the_valid_names(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "install", "toxiproxyy"]) == 2
    err = capsys.readouterr().err
    assert "unknown tool 'toxiproxyy'" in err and "toxiproxy-server" in err and "kwok" in err


def test_missing_binary_says_how_to_install(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ToolError, match="edgebench tools install toxiproxy"):
        tools.tool_path("toxiproxy-server")
    assert main(["tools", "path", "etcd"]) == 1
    assert "edgebench tools install etcd" in capsys.readouterr().err


def test_missing_go_toolchain_is_a_clear_message(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolchainMissingError, match="install it"):
        tools.install(tools.TOOLSETS["etcd"], log=lambda _: None)
    assert main(["tools", "install", "etcd"]) == 1
    err = capsys.readouterr().err
    assert "Go toolchain" in err and "Traceback" not in err


def test_cached_tools_are_never_rebuilt(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ts = tools.TOOLSETS["kubernetes"]
    _fake_install(ts)
    monkeypatch.setenv("PATH", "/nonexistent")  # any build attempt would fail without go
    assert tools.install(ts, log=lambda _: None) is False
    assert tools.ensure(["kube-apiserver"], log=lambda _: None) == {
        "kube-apiserver": ts.path("kube-apiserver")
    }


def test_list_shows_versions_and_state(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fake_install(tools.TOOLSETS["kwok"])
    assert main(["tools", "list"]) == 0
    out = capsys.readouterr().out
    assert any(
        line.split()[:3] == ["kwok", tools.versions.KWOK, "installed"] for line in out.splitlines()
    )
    assert any(
        line.split()[:3] == ["etcd", tools.versions.ETCD, "missing"] for line in out.splitlines()
    )


def test_go_binary_names() -> None:
    assert tools._go_binary_name("go.etcd.io/etcd/server/v3") == "server"
    assert tools._go_binary_name("k8s.io/kubernetes/cmd/kube-apiserver") == "kube-apiserver"


def test_staging_replaces_come_from_the_kubernetes_go_mod(tmp_path: Path) -> None:
    gomod = tmp_path / "go.mod"
    gomod.write_text(
        "module k8s.io/kubernetes\n\nrequire (\n\tk8s.io/api v0.0.0\n"
        "\tk8s.io/utils v0.0.0-20241104100929-3ea5e8cea738\n\tk8s.io/client-go v0.0.0\n)\n"
    )
    ts = tools.TOOLSETS["kubernetes"]
    minor_patch = ts.version.removeprefix("v1.")
    assert tools._kubernetes_staging_replaces(ts, gomod) == {
        "k8s.io/api": f"v0.{minor_patch}",
        "k8s.io/client-go": f"v0.{minor_patch}",
    }


needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain")


@pytest.mark.integration
@needs_go
def test_unreachable_module_proxy_is_explained(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOPROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "modcache"))
    with pytest.raises(BuildError, match="module proxy"):
        tools.install(tools.TOOLSETS["toxiproxy"], log=lambda _: None)
    shutil.rmtree(tmp_path / "modcache", ignore_errors=True)


@pytest.mark.integration
@needs_go
def test_install_builds_a_real_binary_from_its_module(home: Path) -> None:
    logs: list[str] = []
    ts = tools.TOOLSETS["toxiproxy"]
    assert tools.install(ts, log=logs.append) is True
    out = subprocess.run(
        [tools.tool_path("toxiproxy-server"), "-version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ts.version in out.stdout
    assert (ts.bin_dir.parent / "manifest.json").exists()
    assert logs[0].startswith("building toxiproxy") and logs[-1].startswith("built toxiproxy")
    assert tools.install(ts, log=logs.append) is False
    assert not any(p.name.startswith(".build-") for p in ts.bin_dir.parent.iterdir())
    assert os.access(ts.path("toxiproxy-server"), os.X_OK)


def test_unknown_binary_in_path_command(home: Path) -> None:
    with pytest.raises(UsageError, match="unknown binary"):
        tools.tool_path("kubectl")
