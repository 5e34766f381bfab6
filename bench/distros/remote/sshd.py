"""A throw-away OpenSSH server (Debian ``openssh-server``): key-only, its own keys in a folder.

Used by the local lab (one sshd per node namespace, on the management path faults never
touch) and by the tests of ``edgebench lab check``. Nothing is read from or written to
``/etc/ssh`` or ``~/.ssh``: host key, client key, ``authorized_keys``, ``known_hosts`` and
the config all live in ``folder``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.errors import EnvironmentUnavailableError, HostError

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


def sshd_binary() -> str:
    """The sshd to run; EnvironmentUnavailableError saying how to install it."""
    for path in SSHD_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("sshd")
    if found:
        return found
    raise EnvironmentUnavailableError(
        "no sshd found; install it (Debian: apt-get install -y openssh-server)"
    )


def keygen(path: Path, comment: str) -> Path:
    """An ed25519 key pair at ``path`` (and ``path.pub``), made once."""
    if not path.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True,
            capture_output=True,
        )
    return path


@dataclass(frozen=True)
class Keys:
    """The throw-away keys of one lab: host key, client key, and the files using them."""

    folder: Path

    @property
    def host_key(self) -> Path:
        return self.folder / "ssh_host_ed25519_key"

    @property
    def client_key(self) -> Path:
        return self.folder / "id_ed25519"

    @property
    def authorized_keys(self) -> Path:
        return self.folder / "authorized_keys"

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    def make(self) -> Keys:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        keygen(self.host_key, "edgebench-lab-host")
        keygen(self.client_key, "edgebench-lab-client")
        self.authorized_keys.write_text((self.folder / "id_ed25519.pub").read_text())
        os.chmod(self.authorized_keys, 0o600)
        return self

    def trust(self, address: str, port: int) -> None:
        """Add the host key for ``[address]:port`` to ``known_hosts``."""
        pub = (self.folder / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        where = address if port == 22 else f"[{address}]:{port}"  # ssh's known_hosts form
        entry = f"{where} {' '.join(pub)}\n"
        existing = self.known_hosts.read_text() if self.known_hosts.exists() else ""
        if entry not in existing:
            with self.known_hosts.open("a") as f:
                f.write(entry)


def config_text(
    keys: Keys,
    address: str,
    port: int,
    pid_file: Path,
    env: Mapping[str, str] | None = None,
) -> str:
    lines = [
        f"ListenAddress {address}:{port}",
        f"HostKey {keys.host_key}",
        f"AuthorizedKeysFile {keys.authorized_keys}",
        f"PidFile {pid_file}",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "UsePAM no",
        "StrictModes no",
        "UseDNS no",
        "MaxSessions 64",
        "MaxStartups 64:30:128",
        "LogLevel ERROR",
    ]
    lines += [f"SetEnv {k}={v}" for k, v in (env or {}).items()]
    return "\n".join(lines) + "\n"


class Sshd:
    """One sshd in the foreground of its own process (``prefix``: e.g. ``ip netns exec NS``)."""

    def __init__(
        self,
        folder: Path,
        keys: Keys,
        address: str,
        port: int,
        *,
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        name: str = "sshd",
    ) -> None:
        self.folder, self.keys, self.address, self.port = folder, keys, address, port
        self.prefix = tuple(prefix)
        self.env = dict(env or {})
        self.name = name
        self.config = folder / f"{name}.conf"
        self.log = folder / f"{name}.log"
        self.pid_file = folder / f"{name}.pid"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> Sshd:
        binary = sshd_binary()
        os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            config_text(self.keys, self.address, self.port, self.pid_file, self.env)
        )
        argv = [*self.prefix, binary, "-D", "-e", "-f", str(self.config)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        self.keys.trust(self.address, self.port)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HostError(
                    f"sshd {self.name} exited with {self.proc.returncode}: "
                    f"{self.log.read_text(errors='replace')[-500:]}"
                )
            if self._listening():
                return self
            time.sleep(0.05)
        self.stop()
        raise HostError(f"sshd {self.name} did not listen on {self.address}:{self.port}")

    def _listening(self) -> bool:
        if self.prefix:  # in another namespace: ask ss there
            out = subprocess.run(
                [*self.prefix, "ss", "-Htln", f"sport = :{self.port}"],
                capture_output=True,
                text=True,
                check=False,
            )
            return bool(out.stdout.strip())
        try:
            with socket.create_connection((self.address, self.port), timeout=0.2):
                return True
        except OSError:
            return False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self) -> None:
        """Stop the server (open sessions end with it). Never raises."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 9)
        self.proc = None


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])
