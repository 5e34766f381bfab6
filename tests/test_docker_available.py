"""What a user without Docker, or without the k3s image, is told; and the opt-in k3s run
where the image is present."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.distros.docker import engine, k3s_spec
from bench.distros.docker.k3s import K3sDocker
from bench.errors import EnvironmentUnavailableError

ROOT = Path(__file__).resolve().parents[1]


def engine_or_skip():  # type: ignore[no-untyped-def]
    try:
        return engine.connect()
    except EnvironmentUnavailableError as exc:
        pytest.skip(f"no Docker engine here: {exc}")


def k3s_image_present() -> bool:
    try:
        client = engine.connect()
    except EnvironmentUnavailableError:
        return False
    try:
        engine.require_image(client, k3s_spec.IMAGE, "")
        return True
    except EnvironmentUnavailableError:
        return False
    finally:
        client.close()


def test_no_engine_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(EnvironmentUnavailableError, match=r"no Docker engine answers.*DOCKER_HOST"):
        K3sDocker.check_available()


def test_up_without_the_image_exits_2_naming_the_pull(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    engine_or_skip().close()
    if k3s_image_present():
        pytest.skip(f"{k3s_spec.IMAGE} is present here")
    monkeypatch.setenv("EDGEBENCH_HOME", str(tmp_path))
    status = main(["up", "--distro", "k3s", "--cluster-name", "docker-dev"])
    err = capsys.readouterr().err
    assert status == 2
    assert f"docker pull {k3s_spec.IMAGE}" in err
    assert "--provider=remote --lab lab.yaml" in err
    assert not (tmp_path / "clusters" / "docker-dev").exists()  # nothing touched


def test_suites_skip_k3s_with_the_reason(tmp_path: Path) -> None:
    engine_or_skip().close()
    if k3s_image_present():
        pytest.skip(f"{k3s_spec.IMAGE} is present here")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/test_control_plane_outage.py", "-m", "smoke",
         "--distro=k3s", f"--results-dir={tmp_path}", "-p", "no:cacheprovider", "-rs", "-q"],
        cwd=ROOT, capture_output=True, text=True, env={**_env(), "CI": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "skipped" in done.stdout
    assert f"docker pull {k3s_spec.IMAGE}" in done.stdout


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


@pytest.mark.integration
@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.skipif(
    not k3s_image_present(),
    reason=f"opt-in: needs a Docker engine with {k3s_spec.IMAGE} "
    f"(docker pull {k3s_spec.IMAGE}); no registry is reachable here",
)
def test_k3s_smoke_in_containers(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/", "-m", "smoke", "--distro=k3s",
         "--cluster-name=t-k3s-docker", f"--results-dir={tmp_path}", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:]
