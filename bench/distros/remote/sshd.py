"""A throw-away OpenSSH server (Debian ``openssh-server``): key-only, its own keys in a folder.

Used by the local lab (one sshd per node namespace, on the management path faults never
touch) and by the tests of ``edgebench lab check``. Nothing is read from or written to
``/etc/ssh`` or ``~/.ssh``: host key, client key, ``authorized_keys``, ``known_hosts`` and
the config all live in ``folder``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.errors import ClusterError, EnvironmentUnavailableError, HostError
from bench.procs import Supervised, port_open, wait_for

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
    if env:  # one line: sshd takes the first SetEnv line only
        lines.append("SetEnv " + " ".join(f'"{k}={v}"' for k, v in env.items()))
    return "\n".join(lines) + "\n"


class Sshd:
    """One sshd in the foreground of its own supervised process (``prefix``: e.g. ``ip netns
    exec NS``). Attached (the default) it dies with the harness, like every child of ours;
    ``detached`` for a lab that must outlive the command that made it (``edgebench up
    --lab-out``, the host lab), which its owner's teardown then stops."""

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
        detached: bool = False,
    ) -> None:
        self.folder, self.keys, self.address, self.port = folder, keys, address, port
        self.prefix = tuple(prefix)
        self.env = dict(env or {})
        self.name = name
        self.detached = detached
        self.config = folder / f"{name}.conf"
        self.log = folder / f"{name}.log"
        self.pid_file = folder / f"{name}.pid"
        self.proc: Supervised | None = None

    def start(self, timeout_s: float = 10.0) -> Sshd:
        binary = sshd_binary()
        os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
        self.folder.mkdir(parents=True, exist_ok=True)
        # sessions get an empty home of their own: the login shell then reads none of this
        # machine's start-up files (root's ~/.bashrc may run anything, e.g. pyenv's rehash,
        # whose lock, left by a killed session, made every later command wait)
        home = self.folder / "home"
        home.mkdir(exist_ok=True)
        env = {"HOME": str(home), **self.env}
        self.config.write_text(config_text(self.keys, self.address, self.port, self.pid_file, env))
        argv = [*self.prefix, binary, "-D", "-e", "-f", str(self.config)]
        self.proc = Supervised(self.name, argv, self.log, detached=self.detached).start()
        self.keys.trust(self.address, self.port)
        try:
            wait_for(
                self._listening,
                timeout_s,
                f"sshd {self.name} to listen on {self.address}:{self.port}",
                alive=self.proc.check_alive,
            )
        except ClusterError as exc:  # exited, or never listened: say so as a host error
            self.stop()
            raise HostError(f"sshd {self.name}: {exc}") from None
        return self

    def _listening(self) -> bool:
        if self.prefix:  # in another namespace: ask ss there
            out = subprocess.run(
                [*self.prefix, "ss", "-Htln", f"sport = :{self.port}"],
                capture_output=True,
                text=True,
                check=False,
            )
            return bool(out.stdout.strip())
        return port_open(self.address, self.port)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self) -> None:
        """Stop the server and its process group (open sessions end with it). Never raises."""
        if self.proc is not None:
            self.proc.stop()
        self.proc = None
