"""The recorder: exact schema, row-by-row appending, crash safety, no secrets."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.results.records import (
    COLUMNS,
    EVENT_COLUMNS,
    SCHEMA_VERSION,
    EventJournal,
    Recorder,
    RunContext,
    RunInfo,
    redact,
    redact_argv,
)

CTX = RunContext(
    run_id="r1",
    started_at="2026-01-01T00:00:00.000000+00:00",
    distro="kwok",
    provider="local",
    profile="fast",
)
JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06YW5vbnltb3VzIn0.c2lnbmF0dXJl"


def test_header_is_exactly_the_schema(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, CTX)
    rec.record(scenario="offline_autonomy", case="30s", metric_name="detect_s", value=8.25)
    with rec.path.open() as fh:
        header = next(csv.reader(fh))
    assert tuple(header) == COLUMNS
    assert COLUMNS == (
        "schema_version",
        "run_id",
        "started_at",
        "distro",
        "provider",
        "distro_version",
        "profile",
        "scenario",
        "case",
        "repeat",
        "node",
        "metric",
        "value",
        "unit",
        "better",
        "note",
    )


def test_rows_append_and_unit_and_direction_come_from_the_catalogue(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, CTX)
    rec.record(scenario="s", case="c", metric_name="detect_s", value=1.5, node="edge-0")
    rec.set_distro_version("v1.32.9")
    rec.record(scenario="s", case="c", metric_name="evicted_pods", value=3, repeat=1)
    again = Recorder(tmp_path, CTX)  # a second recorder on the same folder appends
    again.record(
        scenario="s",
        case="c",
        metric_name="edge_pods_running",
        value=None,
        note="KWOK nodes have no runtime",
    )
    df = pd.read_csv(rec.path)
    assert list(df["metric"]) == ["detect_s", "evicted_pods", "edge_pods_running"]
    assert list(df["unit"]) == ["s", "count", "ratio"]
    assert list(df["better"]) == ["lower", "lower", "higher"]
    assert df["value"].iloc[0] == 1.5 and df["value"].iloc[1] == 3
    assert math.isnan(df["value"].iloc[2])
    assert df["note"].iloc[2] == "KWOK nodes have no runtime"
    assert pd.isna(df["distro_version"].iloc[0]) and df["distro_version"].iloc[1] == "v1.32.9"
    assert (df["schema_version"] == SCHEMA_VERSION).all()


def test_empty_value_needs_a_note_and_unknown_metrics_fail(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, CTX)
    with pytest.raises(ValueError, match="needs a note"):
        rec.record(scenario="s", case="c", metric_name="detect_s", value=float("nan"))
    with pytest.raises(KeyError, match="unknown metric"):
        rec.record(scenario="s", case="c", metric_name="detect_ms", value=1)
    with pytest.raises(ValueError, match="finite"):
        rec.record(scenario="s", case="c", metric_name="detect_s", value=float("inf"))


def test_a_run_killed_midway_still_parses(tmp_path: Path) -> None:
    """A writer killed with SIGKILL while appending leaves a CSV pandas reads whole."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from bench.results.records import Recorder, RunContext
        rec = Recorder({str(tmp_path)!r}, RunContext("r", "t", "kwok", "local", "fast"))
        i = 0
        while True:
            rec.record(scenario="s", case="c,with \\"quotes\\"\\nand newline",
                       metric_name="detect_s", value=i, repeat=i, note="n" * 500)
            i += 1
            if i == 50:
                print("started", flush=True)
    """)
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started"
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    df = pd.read_csv(tmp_path / "measurements.csv")
    assert len(df) >= 50
    assert list(df["value"]) == list(range(len(df)))
    assert (df["case"] == 'c,with "quotes"\nand newline').all()


def test_no_secret_reaches_a_result_file(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, CTX)
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----"
    rec.record(
        scenario="s",
        case="c",
        metric_name="detect_s",
        value=None,
        note=f"failed: Authorization: Bearer {JWT} token={JWT} key {pem}",
    )
    journal = EventJournal(tmp_path, "r1")
    import datetime as dt

    journal.add(
        scenario="s",
        case="c",
        repeat=0,
        node="edge-0",
        kind="fault_start",
        wall=dt.datetime.now(dt.UTC),
        mono=1.0,
        value=f"password: hunter22 {JWT}",
    )
    info = RunInfo(
        tmp_path,
        CTX,
        command_line=[
            "pytest",
            "--token",
            "abc123secret",
            "--kubeconfig=/home/u/.kube/config",
            JWT,
        ],
    )
    info.extra["error"] = f"client-key-data: {JWT}"
    info.finish()
    for name in ("measurements.csv", "events.csv", "run.json"):
        text = (tmp_path / name).read_text()
        assert JWT not in text and "abc123secret" not in text and "hunter22" not in text, name
        assert "MIIEv" not in text and "/home/u/.kube/config" not in text, name
    assert "<redacted>" in (tmp_path / "measurements.csv").read_text()


def test_redaction_keeps_ordinary_text() -> None:
    assert redact("node edge-0 not Ready after 8.1s") == "node edge-0 not Ready after 8.1s"
    assert redact_argv(["pytest", "suites/", "--distro=kwok"]) == [
        "pytest",
        "suites/",
        "--distro=kwok",
    ]


def test_run_json_has_what_a_reader_needs(tmp_path: Path) -> None:
    info = RunInfo(tmp_path, CTX, command_line=["pytest", "suites/"])
    info.timings = {"node_monitor_grace_period_s": 8.0}
    info.tools = {"kube-apiserver": "v1.32.9"}
    info.write()
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["ended_at"] is None
    info.finish()
    data = json.loads((tmp_path / "run.json").read_text())
    for key in (
        "harness",
        "host",
        "tools",
        "profile",
        "timings",
        "command_line",
        "started_at",
        "ended_at",
    ):
        assert key in data, key
    assert data["harness"]["name"] == "edgebench" and data["harness"]["version"]
    assert data["timings"] == {"node_monitor_grace_period_s": 8.0}
    assert data["ended_at"] >= data["started_at"]


def test_event_journal_columns(tmp_path: Path) -> None:
    import datetime as dt

    EventJournal(tmp_path, "r1").add(
        scenario="s",
        case="c",
        repeat=2,
        node="edge-1",
        kind="ready",
        wall=dt.datetime.now(dt.UTC),
        mono=3.5,
        value="False",
    )
    df = pd.read_csv(tmp_path / "events.csv")
    assert tuple(df.columns) == EVENT_COLUMNS
    assert df["value"].iloc[0] == False  # noqa: E712 - pandas parses the text


def test_lab_secrets_never_reach_results(tmp_path: Path) -> None:
    """SSH keys, passwords and dcmanager tokens, as they could appear in a remote run."""
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    private = key.read_text()
    fernet = "gAAAAABnXkQ1c2VjcmV0LWtleXN0b25lLXRva2VuLXZhbHVl"
    texts = {
        private: "-----BEGIN OPENSSH PRIVATE KEY-----",
        "ssh://admin:hunter22@10.0.0.5:22 is unreachable": "hunter22",
        "sshpass -p 'hunter22' ssh -o User=root 10.0.0.5": "hunter22",
        "dcmanager --os-password hunter22 subcloud show subcloud1": "hunter22",
        "export OS_PASSWORD=hunter22; . /etc/platform/openrc": "hunter22",
        # dcmanager --debug: the keystone request of a failed subcloud poll
        'REQ: curl -X POST http://10.10.10.2:5000/v3/auth/tokens -d {"auth": {"identity": '
        '{"password": {"user": {"name": "admin", "password": "hunter22"}}}}}': "hunter22",
        "OS_PASSWORD='hunter22' OS_USERNAME=admin": "hunter22",
        f"X-Auth-Token: {fernet}": fernet,
        f"keystone issued {fernet}": fernet,
    }
    rec = Recorder(tmp_path, CTX)
    for i, text in enumerate(texts):
        rec.record(scenario="s", case="c", metric_name="detect_s", value=float(i), note=text)
    info = RunInfo(tmp_path, CTX, command_line=["pytest", "--lab", "lab.yaml"])
    info.extra["error"] = "\n".join(texts)
    info.finish()
    for name in ("measurements.csv", "run.json"):
        written = (tmp_path / name).read_text()
        for secret in texts.values():
            assert secret not in written, (name, secret)
        assert "AAAAC3NzaC1lZDI1NTE5" not in written  # the key's body
    assert redact("ssh://admin:hunter22@10.0.0.5:22") == "ssh://admin:<redacted>@10.0.0.5:22"
    assert redact("ssh://root@10.0.0.5:22 --distro=k3s") == "ssh://root@10.0.0.5:22 --distro=k3s"
