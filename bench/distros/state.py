"""A cluster's state directory, ``$EDGEBENCH_HOME/clusters/<name>/``, and who owns it.

Two runs on one machine must never clobber each other. Ownership has two forms:

* **An attached owner** (a pytest session, an ``edgebench up`` still bringing the cluster
  up) holds an exclusive ``flock`` on ``<dir>/lock`` for as long as it runs. The lock file is
  opened ``O_CLOEXEC``, so no child process inherits it, and the kernel drops the lock when
  the owner exits, however it exits: a crashed owner never leaves a stale lock.
* **A detached cluster** (``edgebench up`` returned; its processes run on without any
  Python process) is recognised by the processes its ``state.json`` records under
  ``"pids"`` that are still alive and still the processes that were recorded (``"starts"``
  records each one's kernel start time, so a reused pid does not count). Keeping the flock
  alive would need a long-lived process holding it for no other purpose; the recorded
  processes *are* the cluster, so their liveness is the honest test of "in use".

:meth:`StateDir.acquire` refuses a directory in use, in either form, with a
:class:`~bench.errors.ClusterError` naming the owner, and touches nothing when it refuses.
``edgebench down`` adopts a detached cluster with ``acquire(adopt_detached=True)`` (still
refused while an attached owner holds the lock), stops its processes, then :meth:`remove`.
:meth:`remove` only ever removes a directory whose lock this object holds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.errors import ClusterError
from bench.procs import pid_alive

STATE_FILE = "state.json"
LOCK_FILE = "lock"


def clusters_root() -> Path:
    """``$EDGEBENCH_HOME/clusters``."""
    from bench.build.tools import edgebench_home

    return edgebench_home() / "clusters"


def process_start(pid: int) -> int | None:
    """The kernel start time of ``pid`` (clock ticks since boot), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])  # field 22 of stat(5), counting from the state (field 3)


class StateDir:
    """``<root>/<name>/``: ``state.json``, logs and data of one cluster, with its lock."""

    def __init__(
        self,
        name: str,
        root: Path | None = None,
        *,
        is_ours: Callable[[int], bool] = pid_alive,
    ) -> None:
        self.name = name
        self.path = (root if root is not None else clusters_root()) / name
        self.is_ours = is_ours  # extra check that a recorded pid is still the cluster's
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"StateDir({str(self.path)!r}{', held' if self.held else ''})"

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    @property
    def state_path(self) -> Path:
        return self.path / STATE_FILE

    @property
    def held(self) -> bool:
        """Whether this object holds the directory's lock."""
        return self._fd is not None

    # --- ownership ----------------------------------------------------------------------

    def acquire(self, *, adopt_detached: bool = False) -> None:
        """Take the directory for this process, creating it if needed.

        Raises :class:`ClusterError` if another live process holds the lock, or (unless
        ``adopt_detached``) if processes the state records are still running; in both cases
        nothing in the directory is changed.
        """
        if self._fd is not None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                raise self._in_use(self._lock_owner()) from None
            # The file may have been removed (and the directory with it) between open and
            # flock by an owner that was finishing: then the lock is on a dead inode.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
            self.path.mkdir(parents=True, exist_ok=True)
        if not adopt_detached:
            live = self.live_processes()
            if live:
                os.close(fd)
                name, pid = next(iter(live.items()))
                state = self.read() or {}
                raise self._in_use(
                    {"pid": pid, "what": name, "started": state.get("started", "unknown")}
                )
        owner = {"pid": os.getpid(), "started": dt.datetime.now(dt.UTC).isoformat()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (the directory stays). Never raises."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    @contextlib.contextmanager
    def held_for(self) -> Iterator[StateDir]:
        """``with state_dir.held_for():`` acquire, and release on the way out."""
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    def clear(self) -> None:
        """Empty the directory for a fresh bring-up, keeping the lock (which must be held)."""
        if self._fd is None:
            raise ClusterError(f"clearing {self.path} needs its lock: call acquire() first")
        for entry in self.path.iterdir():
            if entry.name == LOCK_FILE:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def remove(self) -> None:
        """Remove the directory and everything in it, then release the lock.

        Takes the lock first if not held (adopting a detached cluster whose processes the
        caller has stopped); a directory another live process holds is never removed.
        """
        if not self.path.exists():
            self.release()
            return
        self.acquire(adopt_detached=True)  # ClusterError if someone else holds it
        try:
            shutil.rmtree(self.path, ignore_errors=True)
        finally:
            self.release()

    def live_processes(self) -> dict[str, int]:
        """The processes ``state.json`` records that still run: name to pid."""
        state = self.read() or {}
        starts = state.get("starts", {})
        live = {}
        for name, pid in state.get("pids", {}).items():
            pid = int(pid)
            if pid == os.getpid() or not pid_alive(pid) or not self.is_ours(pid):
                continue
            if name in starts and process_start(pid) != starts[name]:
                continue  # the pid now belongs to another process
            live[name] = pid
        return live

    def _lock_owner(self) -> dict[str, Any]:
        try:
            owner: dict[str, Any] = json.loads(self.lock_path.read_text())
        except (OSError, ValueError):
            owner = {}
        return owner

    def _in_use(self, owner: dict[str, Any]) -> ClusterError:
        pid = owner.get("pid", "unknown")
        what = f", {owner['what']}" if owner.get("what") else ""
        return ClusterError(
            f"cluster {self.name} is in use by pid {pid}{what} (started "
            f"{owner.get('started', 'unknown')}); stop it with edgebench down {self.name}"
        )

    # --- state.json ---------------------------------------------------------------------

    def read(self) -> dict[str, Any] | None:
        """``state.json``, or None if absent or unreadable."""
        try:
            data: dict[str, Any] = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None
        return data

    def write(self, state: dict[str, Any]) -> None:
        """Replace ``state.json`` atomically; only the holder of the lock may.

        Adds ``"starts"``: the kernel start time of every pid under ``"pids"``, so a reused
        pid is never taken for the cluster's process.
        """
        if self._fd is None:
            raise ClusterError(f"writing {self.state_path} needs its lock: call acquire() first")
        state = dict(state)
        state.setdefault("started", self._lock_owner().get("started"))
        starts = {}
        for name, pid in state.get("pids", {}).items():
            start = process_start(int(pid))
            if start is not None:
                starts[name] = start
        state["starts"] = starts
        tmp = self.path / f".{STATE_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.state_path)
