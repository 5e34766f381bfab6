"""StateDir: one owner per cluster directory, with real processes contending for it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.distros.state import StateDir, process_start
from bench.errors import ClusterError

ROOT = Path(__file__).resolve().parent.parent

# A child that takes the StateDir, says so on stdout, and holds it until its stdin closes.
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from bench.distros.state import StateDir
    from bench.errors import ClusterError

    sd = StateDir(sys.argv[1], Path(sys.argv[2]))
    try:
        sd.acquire()
    except ClusterError as exc:
        print("refused", exc, flush=True)
        sys.exit(3)
    sd.write({"name": sys.argv[1], "pids": {}})
    (sd.path / "data").write_text("mine")
    print("acquired", flush=True)
    sys.stdin.read()
    """
)


def _holder(name: str, root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, name, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = _holder("demo", tmp_path)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "acquired"
        yield proc
    finally:
        _stop(proc)


def test_a_held_directory_is_refused_and_left_untouched(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    sd = StateDir("demo", tmp_path)
    before = {p.name: p.read_bytes() for p in sd.path.iterdir()}
    with pytest.raises(ClusterError) as err:
        sd.acquire()
    assert f"cluster demo is in use by pid {holder.pid} (started " in str(err.value)
    assert str(err.value).endswith("stop it with edgebench down demo")
    assert not sd.held
    with pytest.raises(ClusterError, match=f"in use by pid {holder.pid}"):
        sd.remove()
    assert {p.name: p.read_bytes() for p in sd.path.iterdir()} == before


def test_the_lock_dies_with_its_owner(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)  # no cleanup code runs: the kernel drops the lock
    holder.wait()
    sd = StateDir("demo", tmp_path)
    sd.acquire()
    assert sd.held and (sd.path / "data").read_text() == "mine"
    assert json.loads(sd.lock_path.read_text())["pid"] == os.getpid()
    sd.remove()
    assert not sd.path.exists() and not sd.held


def test_two_processes_at_once_exactly_one_wins(tmp_path: Path) -> None:
    procs = [_holder("race", tmp_path) for _ in range(4)]
    try:
        firsts = []
        for proc in procs:
            assert proc.stdout is not None
            firsts.append(proc.stdout.readline().split()[0])
        assert sorted(firsts) == ["acquired", "refused", "refused", "refused"]
        winner = procs[firsts.index("acquired")]
        for proc, first in zip(procs, firsts, strict=True):
            if first == "refused":
                assert proc.wait(timeout=30) == 3
        assert (tmp_path / "race" / "data").read_text() == "mine"
        assert (StateDir("race", tmp_path).read() or {})["name"] == "race"
        assert winner.poll() is None
    finally:
        for proc in procs:
            _stop(proc)


def test_a_detached_cluster_is_recognised_by_its_live_processes(tmp_path: Path) -> None:
    agent = subprocess.Popen(["sleep", "300"])
    try:
        up = StateDir("demo", tmp_path)
        up.acquire()
        up.write({"name": "demo", "pids": {"agent-edge-0": agent.pid}})
        assert (up.read() or {})["starts"] == {"agent-edge-0": process_start(agent.pid)}
        up.release()  # ``edgebench up`` returned; the agent runs on

        second = StateDir("demo", tmp_path)
        with pytest.raises(ClusterError, match=f"in use by pid {agent.pid}, agent-edge-0"):
            second.acquire()
        assert not second.held and (second.read() or {})["pids"] == {"agent-edge-0": agent.pid}

        down = StateDir("demo", tmp_path)
        down.acquire(adopt_detached=True)  # what ``edgebench down`` does
        agent.kill()
        agent.wait()
        assert down.live_processes() == {}
        down.remove()
        assert not down.path.exists()
    finally:
        agent.kill()
        agent.wait()


def test_a_reused_pid_is_not_the_cluster(tmp_path: Path) -> None:
    sd = StateDir("demo", tmp_path)
    sd.acquire()
    sd.write({"pids": {"apiserver": os.getppid()}})
    state = sd.read() or {}
    state["starts"]["apiserver"] += 1  # as if the pid had been reused since
    sd.state_path.write_text(json.dumps(state))
    sd.release()
    assert sd.live_processes() == {}
    sd.acquire()  # not refused
    sd.remove()


def test_write_needs_the_lock_and_replaces_atomically(tmp_path: Path) -> None:
    sd = StateDir("demo", tmp_path)
    with pytest.raises(ClusterError, match="acquire"):
        sd.write({"x": 1})
    with sd.held_for():
        sd.write({"x": 1})
        sd.write({"x": 2})
        assert (sd.read() or {})["x"] == 2
        assert sorted(p.name for p in sd.path.iterdir()) == ["lock", "state.json"]
    assert not sd.held
    assert sd.read() is not None  # releasing keeps the directory


def test_the_lock_fd_is_not_inherited(tmp_path: Path) -> None:
    sd = StateDir("demo", tmp_path)
    with sd.held_for():
        child = subprocess.Popen(["sleep", "300"], close_fds=False)
        try:
            fds = os.listdir(f"/proc/{child.pid}/fd")
            targets = {os.readlink(f"/proc/{child.pid}/fd/{fd}") for fd in fds}
            assert str(sd.lock_path) not in targets
        finally:
            child.kill()
            child.wait()
    # the child held nothing: another owner can take it at once
    other = StateDir("demo", tmp_path)
    other.acquire()
    other.release()


def test_clear_empties_all_but_the_lock(tmp_path: Path) -> None:
    sd = StateDir("demo", tmp_path)
    with pytest.raises(ClusterError, match="acquire"):
        sd.clear()
    with sd.held_for():
        sd.write({"pids": {}})
        (sd.path / "logs").mkdir()
        (sd.path / "logs" / "a.log").write_text("x")
        sd.clear()
        assert [p.name for p in sd.path.iterdir()] == ["lock"]
        # still ours: another process is refused
        proc = subprocess.run(
            [sys.executable, "-c", HOLDER, "demo", str(tmp_path)],
            input="", capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False,
        )  # fmt: skip
        assert proc.returncode == 3 and f"in use by pid {os.getpid()}" in proc.stdout
