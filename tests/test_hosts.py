"""bench.hosts against this machine (``local://``) and a throw-away sshd on loopback."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.errors import HostError
from bench.hosts import CommandResult, Host
from edgebench_fixtures.options import in_ci


def test_run_returns_status_and_both_streams() -> None:
    result = Host.local().run("sh -c %s", "echo out; echo err >&2; exit 3")
    assert isinstance(result, CommandResult)
    assert (result.exit_status, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.succeeded


def test_arguments_are_quoted_never_interpreted(tmp_path: Path) -> None:
    hostile = f"{tmp_path}/a b; touch {tmp_path}/pwned $(id)"
    result = Host.local().run("printf %s %s", "%s", hostile)
    assert result.stdout == hostile
    assert not (tmp_path / "pwned").exists()


def test_check_names_host_command_status_and_stderr() -> None:
    with pytest.raises(HostError) as err:
        Host.local().check("ls %s", "/no/such/dir")
    text = str(err.value)
    assert "local://" in text and "ls" in text and "/no/such/dir" in text
    assert "status 2" in text and "No such file" in text


def test_read_read_bytes_and_exists(tmp_path: Path) -> None:
    path = tmp_path / "f b.bin"
    path.write_bytes(b"caf\xc3\xa9\x00\xff")
    host = Host.local()
    assert host.exists(str(path)) and not host.exists(str(tmp_path / "nope"))
    assert host.read_bytes(str(path)) == b"caf\xc3\xa9\x00\xff"
    assert host.read(str(path)).startswith("café")
    with pytest.raises(HostError, match="nope"):
        host.read(str(tmp_path / "nope"))


def test_sudo_wraps_commands_in_sudo() -> None:
    host = Host.local(sudo=True)
    assert host.sudo and host.spec == "local://"
    if shutil.which("sudo") is None:
        with pytest.raises(HostError, match="sudo"):
            host.check("true")
    else:
        assert host.check("id -u").stdout.strip() == "0"


def test_unknown_connection_type_is_a_host_error() -> None:
    with pytest.raises(HostError, match="nosuch://x"):
        Host("nosuch://x")


# --- ssh:// against a real sshd on loopback ----------------------------------------------

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A throw-away sshd on 127.0.0.1 that accepts one fresh key; always stopped."""
    if not Path(SSHD).exists() or shutil.which("ssh") is None:
        msg = "no sshd/ssh here; install it with: apt-get install openssh-server"
        if in_ci():
            pytest.fail(f"CI=true: {msg}", pytrace=False)
        pytest.skip(msg)
    hostkey, userkey = tmp_path / "hostkey", tmp_path / "userkey"
    for key in (hostkey, userkey):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    authorized = tmp_path / "authorized_keys"
    shutil.copy(userkey.with_suffix(".pub"), authorized)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    port = _free_port()
    log = tmp_path / "sshd.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-p", str(port), "-h", str(hostkey), "-f", "/dev/null",
             "-o", "ListenAddress=127.0.0.1", "-o", f"AuthorizedKeysFile={authorized}",
             "-o", "StrictModes=no", "-o", "UsePAM=no", "-o", "PidFile=none",
             "-o", "PermitRootLogin=prohibit-password", "-o", "PasswordAuthentication=no"],
            stdout=subprocess.DEVNULL, stderr=log_file,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"sshd did not start: {log.read_text()}")
                time.sleep(0.05)
        yield port, userkey
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_ssh_host_runs_commands_and_reads_files(sshd: tuple[int, Path], tmp_path: Path) -> None:
    port, key = sshd
    (tmp_path / "remote.txt").write_text("hello over ssh\n")
    host = Host(
        f"ssh://{getpass.getuser()}@127.0.0.1:{port}",
        ssh_identity_file=str(key),
        ssh_extra_args="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        controlpersist=0,  # no ControlMaster process left behind
    )
    assert host.check("echo %s", "a b").stdout == "a b\n"
    assert host.run("exit 4").exit_status == 4
    assert host.read(str(tmp_path / "remote.txt")) == "hello over ssh\n"
    assert host.exists(str(tmp_path / "remote.txt"))
    assert not host.exists(str(tmp_path / "absent"))
    assert int(host.check("echo $$").stdout) != os.getpid()


def test_unreachable_ssh_host_is_a_host_error(tmp_path: Path) -> None:
    if shutil.which("ssh") is None:
        pytest.skip("no ssh client here; install it with: apt-get install openssh-client")
    host = Host(
        f"ssh://nobody@127.0.0.1:{_free_port()}",
        ssh_extra_args="-o BatchMode=yes -o StrictHostKeyChecking=no",
        controlpersist=0,
        timeout=5,
    )
    with pytest.raises(HostError, match="unreachable"):
        host.run("true")


def test_run_input_feeds_stdin_and_keeps_it_off_the_command_line() -> None:
    result = Host.local().run_input("s3cret\n", "read -r x; echo ${#x} %s", "arg")
    assert (result.exit_status, result.stdout) == (0, "6 arg\n")
    assert "s3cret" not in result.command
