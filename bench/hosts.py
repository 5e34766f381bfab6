"""Where commands run and files are read for one machine of a cluster.

A :class:`Host` wraps a `pytest-testinfra <https://testinfra.readthedocs.io>`_ host, so the
same driver code reaches this machine (``local://``), a lab machine over SSH (``ssh://`` or
``paramiko://``) or a container (``docker://``). Commands are a format string with ``%s``
placeholders and separate arguments, which testinfra quotes for the shell::

    host = Host.local()
    host.check("kill -TERM %s", str(pid))
    host.read("/var/log/agent.log")

User values never go into the format string itself.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any

import testinfra

from bench.errors import HostError

_STDERR_TAIL = 500  # characters of stderr quoted in an error


@dataclass(frozen=True)
class CommandResult:
    """What one command did: its exit status and its output."""

    command: str
    exit_status: int
    stdout_bytes: bytes
    stderr_bytes: bytes

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode(errors="replace")

    @property
    def succeeded(self) -> bool:
        return self.exit_status == 0


class Host:
    """One machine: ``Host("ssh://root@lab-1:2222", sudo=False, ssh_identity_file=...)``.

    ``spec`` is a testinfra host spec; keyword arguments go to the testinfra backend
    (``ssh_identity_file``, ``ssh_config``, ``ssh_extra_args``, ``timeout``, ...).
    With ``sudo=True`` every command runs through ``sudo /bin/sh -c``.
    """

    def __init__(self, spec: str, *, sudo: bool = False, **backend_options: Any) -> None:
        self.spec = spec
        self.sudo = sudo
        try:
            self._host = testinfra.get_host(spec, sudo=sudo, **backend_options)
        except (RuntimeError, ValueError) as exc:
            raise HostError(f"cannot use host {spec!r}: {exc}") from exc

    @classmethod
    def local(cls, *, sudo: bool = False) -> Host:
        """This machine, commands run by ``/bin/sh``."""
        return cls("local://", sudo=sudo)

    def __repr__(self) -> str:
        return f"Host({self.spec!r}{', sudo=True' if self.sudo else ''})"

    def run(self, cmd: str, *args: str) -> CommandResult:
        """Run ``cmd % quoted(args)``; a non-zero exit status is a result, not an error.

        Raises :class:`HostError` only when the host itself cannot be reached.
        """
        try:
            out = self._host.run(cmd, *args)
        except RuntimeError as exc:  # testinfra's ssh backends: exit 255, no connection
            raise HostError(f"host {self.spec} is unreachable running {cmd!r}: {exc}") from exc
        command = out.command.decode(errors="replace") if out.command else cmd
        return CommandResult(command, out.rc, out.stdout_bytes, out.stderr_bytes)

    def run_input(self, stdin: str, cmd: str, *args: str, timeout: float = 120.0) -> CommandResult:
        """Like :meth:`run`, with ``stdin`` fed to the command: how a secret reaches a host
        without being on any command line (here or there). ``local://`` and ``ssh://`` only.

        testinfra's backends close standard input, so the command line it would run is built
        by its own backend (``get_command`` for sudo, the ssh backend's argv) and run here.
        """
        backend = self._host.backend
        command = backend.get_command(cmd, *args)
        if backend.NAME == "ssh":
            parts, values = backend._build_ssh_command(command)
            local = backend.quote(" ".join(parts), *values)
        elif backend.NAME == "local":
            local = command
        else:
            raise HostError(f"host {self.spec}: standard input needs local:// or ssh://")
        try:
            proc = subprocess.run(
                local, shell=True, input=stdin.encode(), capture_output=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise HostError(f"host {self.spec}: {cmd!r} did not end within {timeout:g}s") from None
        if backend.NAME == "ssh" and proc.returncode == 255:
            tail = proc.stderr.decode(errors="replace").strip()[-_STDERR_TAIL:]
            raise HostError(f"host {self.spec} is unreachable running {cmd!r}: {tail}")
        return CommandResult(command, proc.returncode, proc.stdout, proc.stderr)

    def check(self, cmd: str, *args: str) -> CommandResult:
        """Like :meth:`run`, but a non-zero exit status is a :class:`HostError`."""
        result = self.run(cmd, *args)
        if not result.succeeded:
            stderr = result.stderr.strip()[-_STDERR_TAIL:] or "(no stderr)"
            raise HostError(
                f"on host {self.spec}: {result.command!r} exited with status "
                f"{result.exit_status}: {stderr}"
            )
        return result

    def read_bytes(self, path: str) -> bytes:
        """The content of ``path``; :class:`HostError` if it cannot be read."""
        return self.check("cat -- %s", path).stdout_bytes

    def read(self, path: str) -> str:
        """The content of ``path`` as text (undecodable bytes replaced)."""
        return self.read_bytes(path).decode(errors="replace")

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists on the host (any kind of file)."""
        return self.run("test -e %s", path).succeeded
