"""The StarlingX subcloud rows of an outage, polled over SSH from a throw-away sshd whose
``dcmanager`` is a **stand-in** (this file only): it answers ``dcmanager subcloud show NAME -f
json`` from a schedule (availability and sync statuses changing at set times, as a system
controller's audits would) and refuses calls without the keystone credentials, like the CLI.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from sshd_support import require_sshd

from bench.distros.remote.check import check_lab, failure
from bench.distros.remote.drivers import RemoteSettings, StarlingXRemote
from bench.distros.remote.lab import Lab, SystemController, parse_lab
from bench.distros.remote.sshd import Keys, Sshd
from bench.distros.remote.starlingx import SubcloudPoller
from bench.errors import UsageError
from bench.model import ClusterSpec
from bench.procs import free_port
from bench.results.records import EventJournal, Recorder, RunContext
from bench.scenario.run import ScenarioRun
from bench.scenario.template import Outage

PASSWORD = "Li69nux*-stand-in"
ENDPOINTS = ("dc-cert", "identity", "kubernetes", "platform")

#: the stand-in dcmanager: the schedule's last entry at or before now decides the answer
DCMANAGER = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys, time
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "calls.log"), "a") as log:
        log.write(" ".join(sys.argv) + "\\n")
    if not os.environ.get("OS_AUTH_URL"):
        sys.exit("Missing value auth-url required for auth plugin password")
    with open(os.path.join(here, "expected-password")) as f:
        expected = f.read()
    if os.environ.get("OS_PASSWORD") != expected:
        print("REQ: curl -g -i -X POST http://keystone.invalid/v3/auth/tokens -d "
              + json.dumps({{"auth": {{"identity": {{"password": {{"user": {{
                  "name": "admin", "password": os.environ.get("OS_PASSWORD", "")}}}}}}}}}}),
              file=sys.stderr)
        sys.exit("The request you have made requires authentication. (HTTP 401)")
    assert sys.argv[1:3] == ["subcloud", "show"] and sys.argv[4:] == ["-f", "json"], sys.argv
    with open(os.path.join(here, "schedule.json")) as f:
        schedule = json.load(f)
    now = time.time() - schedule["start"]
    state = [s for s in schedule["states"] if s[0] <= now][-1]
    out = {{"id": 1, "name": sys.argv[3], "management": "managed", "availability": state[1]}}
    out.update({{f"{{e}}_sync_status": state[2] for e in {endpoints}}})
    print(json.dumps(out))
    """
)


@dataclass
class Controller:
    folder: Path
    keys: Keys
    port: int

    def schedule(self, states: list[tuple[float, str, str]]) -> float:
        """Start the schedule now; returns its start on the monotonic clock."""
        mono = time.monotonic()
        (self.folder / "bin" / "schedule.json").write_text(
            json.dumps({"start": time.time(), "states": states})
        )
        return mono

    def lab(self, openrc: str = "openrc", password_env: str | None = None) -> Lab:
        ssh = (
            f"host: ssh://root@127.0.0.1:{self.port}\n"
            f"  identity_file: {self.keys.client_key}\n  known_hosts: {self.keys.known_hosts}\n"
        )
        text = (
            "distro: starlingx\nkubeconfig: kc\nnodes:\n  - name: controller-0\n"
            f"    fault_backend: none\n    {ssh.replace(chr(10) + '  ', chr(10) + '    ')}"
            f"system_controller:\n  {ssh}  subcloud: subcloud1\n  openrc: {self.folder / openrc}\n"
            + (f"  password_env: {password_env}\n" if password_env else "")
        )
        return parse_lab(text, self.folder / "lab.yaml")

    def controller(
        self, openrc: str = "openrc", password_env: str | None = None
    ) -> SystemController:
        lab = self.lab(openrc, password_env)
        assert lab.system_controller is not None
        return lab.system_controller

    def calls(self) -> str:
        log = self.folder / "bin" / "calls.log"
        return log.read_text() if log.exists() else ""


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    require_sshd()
    folder = tmp_path_factory.mktemp("controller")
    keys = Keys(folder / "keys").make()
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    dcmanager = bin_dir / "dcmanager"
    dcmanager.write_text(DCMANAGER.format(python=sys.executable, endpoints=ENDPOINTS))
    dcmanager.chmod(0o755)
    (bin_dir / "expected-password").write_text(PASSWORD)
    auth = "export OS_AUTH_URL=http://keystone.invalid:5000/v3 OS_USERNAME=admin\n"
    (folder / "openrc").write_text(auth + f"export OS_PASSWORD='{PASSWORD}'\n")
    (folder / "openrc-nopass").write_text(auth)
    env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"}
    server = Sshd(folder, keys, "127.0.0.1", free_port(), env=env, name="controller").start()
    try:
        yield Controller(folder, keys, server.port)
    finally:
        server.stop()


def scenario_run(tmp_path: Path, cluster: object, recorder: object) -> ScenarioRun:
    return ScenarioRun(
        cluster=cluster,  # type: ignore[arg-type]
        observer=SimpleNamespace(),  # type: ignore[arg-type]
        recorder=recorder,  # type: ignore[arg-type]
        journal=EventJournal(tmp_path, "r"),
        scenario="control_plane_outage",
        case="all-nodes/blackhole",
        repeat=0,
    )


def outage(cut: float, restore: float, hold_s: float | None = None) -> Outage:
    fault = SimpleNamespace(started_mono=cut, ended_mono=restore)
    return Outage(faults={"controller-0": fault}, hold_s=hold_s)  # type: ignore[dict-item]


def test_an_outage_records_the_three_subcloud_metrics_from_the_controllers_view(
    controller: Controller, tmp_path: Path
) -> None:
    poll_s = 0.2
    rows: list[dict[str, object]] = []
    cluster = SimpleNamespace(
        edge_nodes=[],
        CAPABILITIES=frozenset(),
        subcloud_poller=lambda: SubcloudPoller(
            controller.controller().ssh.host(), controller.controller(), poll_s=poll_s
        ),
    )
    run = scenario_run(tmp_path, cluster, SimpleNamespace(record=lambda **r: rows.append(r)))
    with run.subcloud_watch() as watch:
        start = controller.schedule(
            [
                (0, "online", "in-sync"),
                (1.5, "offline", "unknown"),
                (3.0, "online", "out-of-sync"),
                (4.0, "online", "in-sync"),
            ]
        )
        cut, restore = start + 1.0, start + 2.5
        time.sleep(max(0.0, cut - time.monotonic()))
        watch.wait_offline(cut)  # held until the controller saw it offline
        assert time.monotonic() - start >= 1.5
        time.sleep(max(0.0, restore - time.monotonic()))
        run.record_subcloud(watch, outage(cut, restore, hold_s=0.25))
    got = {r["metric_name"]: (r["value"], r["note"], r["node"]) for r in rows}
    assert set(got) == {"subcloud_offline_detect_s", "subcloud_online_s", "subcloud_resync_s"}
    # a sample is timed when its answer arrives: never before the change, within a poll after
    for metric, true in (
        ("subcloud_offline_detect_s", 0.5),
        ("subcloud_online_s", 0.5),
        ("subcloud_resync_s", 1.5),
    ):
        value, _, node = got[metric]
        assert isinstance(value, float) and true <= value <= true + poll_s + 0.5, (metric, value)
        assert node == "subcloud:subcloud1"
    # the cut was held past the hold asked for, until the controller saw the outage
    held = "outage 1.5s (hold 0.25s, held until the controller saw the subcloud offline)"
    assert got["subcloud_resync_s"][1] == (
        "dc-cert=in-sync, identity=in-sync, kubernetes=in-sync, platform=in-sync; "
        f"polled every 0.2s; {held}"
    )
    assert got["subcloud_online_s"][1] == f"polled every 0.2s; {held}"
    assert "show subcloud1 -f json" in controller.calls()


def test_the_password_comes_from_an_environment_variable_through_stdin_only(
    controller: Controller, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = controller.controller("openrc-nopass", password_env="EB_WTR_STX_PASSWORD")
    with pytest.raises(UsageError, match="environment variable EB_WTR_STX_PASSWORD is not set"):
        SubcloudPoller(sc.ssh.host(), sc)
    monkeypatch.setenv("EB_WTR_STX_PASSWORD", PASSWORD)
    controller.schedule([(0, "online", "in-sync")])
    poller = SubcloudPoller(sc.ssh.host(), sc)
    assert poller.sample().status.availability == "online"
    assert PASSWORD not in controller.calls()  # not on the controller's command line
    assert PASSWORD not in " ".join(poller._command)  # nor on the harness's
    # without it the stand-in refuses, echoing a keystone debug line with the password
    # sent: the failure reaches the rows' notes, the password does not reach the results
    monkeypatch.setenv("EB_WTR_STX_PASSWORD", "hunter22-wrong")
    poller = SubcloudPoller(sc.ssh.host(), sc, poll_s=0.1)
    ctx = RunContext("r", "t", "starlingx", "remote", "fast")
    cluster = SimpleNamespace(
        edge_nodes=[], CAPABILITIES=frozenset(), subcloud_poller=lambda: poller
    )
    run = scenario_run(tmp_path, cluster, Recorder(tmp_path, ctx))
    with run.subcloud_watch() as watch:
        now = time.monotonic()
        while not poller.errors:
            assert time.monotonic() - now < 10, "no failed poll"
            time.sleep(0.1)
        watch.resync_bound_s = 0.0
        run.record_subcloud(watch, outage(now, now))
    written = (tmp_path / "measurements.csv").read_text()
    assert (
        "failed polls, last: dcmanager subcloud show subcloud1 exited with status 1: The request "
        "you have made requires authentication. (HTTP 401)" in written
    )
    assert "hunter22-wrong" not in written and PASSWORD not in written


def test_without_a_system_controller_the_rows_are_empty_and_say_why(tmp_path: Path) -> None:
    path = tmp_path / "stx.yaml"
    path.write_text(
        "distro: starlingx\nkubeconfig: kc\nnodes:\n  - name: controller-0\n"
        "    host: ssh://root@127.0.0.1\n    fault_backend: none\n"
    )
    stx = StarlingXRemote(ClusterSpec(name="wtr-stx", provider_settings=RemoteSettings(path)))
    rows: list[dict[str, object]] = []
    cluster = SimpleNamespace(
        edge_nodes=[], CAPABILITIES=frozenset(), subcloud_poller=stx.subcloud_poller
    )
    run = scenario_run(tmp_path, cluster, SimpleNamespace(record=lambda **r: rows.append(r)))
    with run.subcloud_watch() as watch:
        run.record_subcloud(watch, outage(1.0, 2.0))
    assert [(r["metric_name"], r["value"], r["node"]) for r in rows] == [
        ("subcloud_offline_detect_s", None, "subcloud"),
        ("subcloud_online_s", None, "subcloud"),
        ("subcloud_resync_s", None, "subcloud"),
    ]
    assert rows[0]["note"] == (
        "no subcloud view: the lab names no system_controller (with its subcloud): the system "
        "controller's view of the subcloud is read there with dcmanager"
    )
    # a cluster that is no subcloud records nothing
    rows.clear()
    plain = SimpleNamespace(edge_nodes=[], CAPABILITIES=frozenset(), subcloud_poller=lambda: None)
    run = scenario_run(tmp_path, plain, SimpleNamespace(record=lambda **r: rows.append(r)))
    with run.subcloud_watch() as watch:
        run.record_subcloud(watch, outage(1.0, 2.0))
    assert rows == [] and run.expected == set()


def test_lab_check_asks_the_system_controller_once(controller: Controller) -> None:
    controller.schedule([(0, "online", "in-sync")])
    reports = check_lab(controller.lab(), {"controller-0": True})
    assert failure(reports) is None, [r.problems for r in reports]
    report = reports[-1]
    assert (report.kind, report.notes) == (
        "system_controller",
        [
            "subcloud subcloud1: online, dc-cert=in-sync, identity=in-sync, kubernetes=in-sync, "
            "platform=in-sync"
        ],
    )
    reports = check_lab(controller.lab("openrc-nopass"), {"controller-0": True})
    assert str(failure(reports)) == (
        f"lab check failed: system_controller ssh://root@127.0.0.1:{controller.port}: dcmanager "
        "subcloud show subcloud1 exited with status 1: The request you have made requires "
        "authentication. (HTTP 401)"
    )


def test_the_outage_length_is_said_and_why_when_beyond_the_hold() -> None:
    from bench.scenario.subcloud import outage_note

    assert outage_note(30.4, 30.0) == "outage 30.4s"
    assert outage_note(171.0, 30.0) == (
        "outage 171.0s (hold 30s, held until the controller saw the subcloud offline)"
    )
    assert outage_note(12.0, None) == "outage 12.0s"
