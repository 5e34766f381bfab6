"""StarlingX subcloud metrics from recorded ``dcmanager subcloud show`` output."""

from __future__ import annotations

import pytest

from bench.distros.remote.starlingx import (
    Sample,
    SubcloudStatus,
    parse_subcloud_show,
    show_command,
    subcloud_metrics,
)
from bench.errors import ClusterError
from bench.results.metrics import metric

TABLE = """\
+-----------------------------+----------------------------+
| Field                       | Value                      |
+-----------------------------+----------------------------+
| id                          | 1                          |
| name                        | subcloud1                  |
| management                  | managed                    |
| availability                | offline                    |
| deploy_status               | complete                   |
| management_subnet           | 192.168.101.0/24           |
| dc-cert_sync_status         | unknown                    |
| identity_sync_status        | unknown                    |
| kubernetes_sync_status      | out-of-sync                |
| platform_sync_status        | unknown                    |
+-----------------------------+----------------------------+
"""
JSON = (
    '{"id": 1, "name": "subcloud1", "availability": "online", "management": "managed",'
    ' "dc-cert_sync_status": "in-sync", "identity_sync_status": "in-sync",'
    ' "platform_sync_status": "in-sync"}'
)


def test_the_table_and_the_json_output_are_read() -> None:
    table = parse_subcloud_show(TABLE)
    assert table.availability == "offline"
    assert table.endpoints == {
        "dc-cert": "unknown",
        "identity": "unknown",
        "kubernetes": "out-of-sync",
        "platform": "unknown",
    }
    assert not table.in_sync
    js = parse_subcloud_show(JSON)
    assert (js.availability, js.in_sync) == ("online", True)
    assert js.endpoints_note() == "dc-cert=in-sync, identity=in-sync, platform=in-sync"


def test_output_without_availability_is_an_error() -> None:
    with pytest.raises(ClusterError, match="gave no availability: Subcloud not found"):
        parse_subcloud_show("Subcloud not found: subcloud9")


def test_the_command_keeps_user_values_out_of_the_format_string() -> None:
    assert show_command("/etc/platform/openrc", "sub;rm -rf /") == (
        ". %s >/dev/null && dcmanager subcloud show %s -f json",
        "/etc/platform/openrc",
        "sub;rm -rf /",
    )


ONLINE_SYNCED = parse_subcloud_show(JSON)
OFFLINE = parse_subcloud_show(TABLE)
ONLINE_OUT = SubcloudStatus("online", {"platform": "in-sync", "kubernetes": "out-of-sync"})


def test_metrics_from_samples_around_an_outage() -> None:
    samples = [
        Sample(0.0, ONLINE_SYNCED),
        Sample(5.0, ONLINE_SYNCED),
        Sample(35.0, OFFLINE),  # the audit after the cut at 1.0
        Sample(100.0, OFFLINE),  # restore at 101.0
        Sample(130.0, ONLINE_OUT),
        Sample(160.0, ONLINE_SYNCED),
    ]
    got = subcloud_metrics(samples, cut_at=1.0, restore_at=101.0)
    assert got == {
        "subcloud_offline_detect_s": (34.0, "polled every 5s"),
        "subcloud_online_s": (29.0, "polled every 5s"),
        "subcloud_resync_s": (
            59.0,
            "dc-cert=in-sync, identity=in-sync, platform=in-sync; polled every 5s",
        ),
    }


def test_an_outage_never_seen_and_a_subcloud_that_stays_out_of_sync() -> None:
    samples = [Sample(0.0, ONLINE_SYNCED), Sample(50.0, ONLINE_SYNCED), Sample(70.0, ONLINE_OUT)]
    got = subcloud_metrics(samples, cut_at=1.0, restore_at=60.0)
    assert got["subcloud_offline_detect_s"] == (
        None,
        "never offline during the outage; polled every 5s",
    )
    # never offline: the first poll after the restore is not a time to come back
    assert got["subcloud_online_s"] == (None, "never seen offline; polled every 5s")
    assert got["subcloud_resync_s"] == (None, "never seen offline; polled every 5s")


def test_a_subcloud_that_stays_out_of_sync() -> None:
    samples = [Sample(0.0, ONLINE_SYNCED), Sample(30.0, OFFLINE), Sample(70.0, ONLINE_OUT)]
    got = subcloud_metrics(samples, cut_at=1.0, restore_at=60.0)
    assert got["subcloud_online_s"] == (10.0, "polled every 5s")
    assert got["subcloud_resync_s"] == (
        None,
        "not in-sync: kubernetes=out-of-sync, platform=in-sync; polled every 5s",
    )


def test_an_offline_seen_only_after_the_restore_counts_from_the_restore() -> None:
    samples = [Sample(0.0, ONLINE_SYNCED), Sample(65.0, OFFLINE), Sample(70.0, ONLINE_SYNCED)]
    got = subcloud_metrics(samples, cut_at=1.0, restore_at=60.0)
    assert got["subcloud_offline_detect_s"][0] is None
    assert got["subcloud_online_s"] == (10.0, "polled every 5s")


def test_the_metrics_are_in_the_catalogue() -> None:
    for name in ("subcloud_offline_detect_s", "subcloud_online_s", "subcloud_resync_s"):
        assert (metric(name).unit, metric(name).better) == ("s", "lower")
