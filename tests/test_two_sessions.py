"""Two pytest sessions on one machine asking for the same cluster: the second is refused and
the first keeps its cluster (its processes, its state directory) to the end."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench.distros.local.kwok import KwokLocal
from edgebench_fixtures.cluster import require_available

pytestmark = [pytest.mark.integration, pytest.mark.cluster]
ROOT = Path(__file__).resolve().parent.parent

HOLD = textwrap.dedent(
    """
    import os, time
    from pathlib import Path

    def test_hold(cluster):
        from kubernetes import client
        Path(os.environ["UP_MARKER"]).write_text(str(cluster.state_dir))
        release = Path(os.environ["RELEASE_MARKER"])
        deadline = time.monotonic() + 600
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        nodes = client.CoreV1Api(cluster.api).list_node().items
        assert len(nodes) == 1, "the cluster must still answer"
        assert (cluster.state_dir / "state.json").exists(), "its state must still exist"
    """
)
SECOND = "def test_second(cluster):\n    pass\n"


def _session(tmp_path: Path, test: str, name: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:edgebench",
         "-p", "bench.plugin", "-q", "-rE", "--distro=kwok", "--edge-nodes=1",
         f"--cluster-name={name}", f"--results-dir={tmp_path / 'results'}", test],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_a_second_session_on_the_same_cluster_is_refused_and_harmless(tmp_path: Path) -> None:
    require_available(KwokLocal)
    (tmp_path / "test_hold.py").write_text(HOLD)
    (tmp_path / "test_second.py").write_text(SECOND)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    up, release = tmp_path / "up", tmp_path / "release"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "EDGEBENCH_"))}
    env.update(PYTHONPATH=str(ROOT), UP_MARKER=str(up), RELEASE_MARKER=str(release))
    if "EDGEBENCH_HOME" in os.environ:
        env["EDGEBENCH_HOME"] = os.environ["EDGEBENCH_HOME"]
    name = f"two-{os.getpid()}"
    first = _session(tmp_path, "test_hold.py", name, env)
    try:
        deadline = time.monotonic() + 300
        while not up.exists():
            assert first.poll() is None, first.communicate()[0]
            assert time.monotonic() < deadline, "the first session's cluster did not come up"
            time.sleep(0.5)
        second = _session(tmp_path, "test_second.py", name, env)
        out2, _ = second.communicate(timeout=300)
        release.write_text("")
        out1, _ = first.communicate(timeout=300)
        assert first.returncode == 0, f"the first session was disturbed:\n{out1}\n{out2}"
        assert second.returncode != 0, out2
        assert f"cluster {name} is in use by pid {first.pid}" in out2, out2
    finally:
        release.write_text("")
        if first.poll() is None:
            first.communicate(timeout=300)
