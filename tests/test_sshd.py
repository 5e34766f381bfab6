"""The labs' own sshd: sessions run in an empty home of their own, with every variable the
lab sets (none of this machine's shell start-up files is read)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.distros.remote.sshd import Keys, Sshd
from bench.procs import free_port
from tests.sshd_support import require_sshd


def test_sessions_get_an_empty_home_and_every_variable_the_lab_sets(tmp_path: Path) -> None:
    require_sshd()
    keys = Keys(tmp_path / "keys").make()
    port = free_port()
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "EB_PROBE": "two words"}
    server = Sshd(tmp_path / "srv", keys, "127.0.0.1", port, env=env).start()
    try:
        out = subprocess.run(
            ["ssh", "-i", str(keys.client_key), "-o", f"UserKnownHostsFile={keys.known_hosts}",
             "-o", "BatchMode=yes", "-p", str(port), "root@127.0.0.1",
             'echo "$HOME|$PATH|$EB_PROBE"; ls -A "$HOME"'],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
    finally:
        server.stop()
    first, *rest = out.stdout.splitlines()
    assert first == f"{tmp_path / 'srv' / 'home'}|{env['PATH']}|two words"
    assert rest == []  # nothing in it: no .bashrc of anyone's
