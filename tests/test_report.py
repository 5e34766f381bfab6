"""Reports: the verdict first, strip plots, timelines, conditions, Markdown and HTML."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bench.results.analysis import load_measurements, read_events
from bench.results.plots import caption_of, strip_plots, timeline_rows
from bench.results.report import (
    distro_colors,
    render_markdown,
    report_tables,
    write_report,
)

DATA = Path(__file__).parent / "data"
VERSUS = [DATA / "versus" / d for d in ("k3s", "kubeedge", "kwok")]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(argv: Sequence[str]) -> int:
    """``edgebench report ...`` through the real command line."""
    from bench.cli import main

    return main(list(argv))


class Outline(HTMLParser):
    """The page's headings, tables (by id or first header cell) and images, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []
        self.images = 0
        self.tables: list[list[list[str]]] = []
        self._tag: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("h1", "h2", "h3"):
            self._tag = tag
        elif tag == "table":
            self.order.append(f"table#{found.get('id') or len(self.tables)}")
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images += 1
            self.order.append("img")
            assert (found.get("src") or "").startswith("data:image/png;base64,")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.tables:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == self._tag:
            self._tag = None

    def handle_data(self, data: str) -> None:
        if self._tag:
            self.order.append(f"{self._tag}:{data.strip()}")
        if self._cell is not None:
            self._cell.append(data)


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    return parser


# --- tables --------------------------------------------------------------------------------


def test_tables_carry_the_verdicts_and_the_empty_notes() -> None:
    tables = report_tables(load_measurements(VERSUS), baseline="k3s")
    assert tables.verdicts is not None and tables.baseline == "k3s"
    assert set(tables.verdicts["distro"]) == {"kubeedge", "kwok"}
    assert tables.empty_notes is not None
    row = tables.empty_notes.iloc[0].to_dict()
    assert (row["distro"], row["metric"], row["empty"]) == ("kwok", "edge_pods_running", 9)
    assert row["note"] == "KWOK nodes have no runtime"
    # headline recovery figures first in the summary
    assert list(dict.fromkeys(tables.summary["metric"]))[:3] == [
        "stable_recover_s",
        "relapses",
        "pods_stable_s",
    ]


def test_one_distro_says_why_there_is_no_verdict() -> None:
    tables = report_tables(load_measurements([DATA / "verdicts_base"]))
    assert tables.verdicts is None
    assert "only one distro (k3s)" in tables.verdict_note


def test_colours_are_fixed_per_distro() -> None:
    assert distro_colors(["kwok", "k3s"])["k3s"] == distro_colors(["k3s"])["k3s"]
    several = distro_colors(["zeta", "alpha", "kubeedge"])
    assert len(set(several.values())) == 3


def test_markdown_opens_with_the_verdict() -> None:
    frame = load_measurements(VERSUS)
    text = render_markdown(report_tables(frame, baseline="k3s"), [])
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections == ["## Verdict", "## offline_autonomy", "## Conditions"]
    assert "- kubeedge is BETTER than k3s on stable_recover_s" in text
    assert (
        "| offline_autonomy | outage_60s | stable_recover_s (s) | kubeedge vs k3s | better | 9/9 |"
        in text
    )
    assert "| kwok | outage_60s | edge_pods_running | 9 | KWOK nodes have no runtime |" in text


# --- plots ---------------------------------------------------------------------------------


def test_strip_plots_have_captions_from_the_catalogue_and_name_empty_groups() -> None:
    frame = load_measurements(VERSUS)
    plots = {p.name: p for p in strip_plots(frame, distro_colors(["k3s", "kubeedge", "kwok"]))}
    assert next(iter(plots)) == "dist_offline_autonomy_stable_recover_s.png"
    assert all(p.png.startswith(PNG_MAGIC) for p in plots.values())
    edge = plots["dist_offline_autonomy_edge_pods_running.png"]
    assert edge.caption.startswith("edge_pods_running (ratio): edge-side view of pods running")
    assert "No values: outage_60s/kwok: KWOK nodes have no runtime." in edge.caption
    assert "renamed v1 metric" in caption_of("converge_s@v1", "s", "lower")


def test_a_metric_with_only_empty_values_still_plots() -> None:
    frame = load_measurements([DATA / "verdicts_base"])
    plots = {p.name: p for p in strip_plots(frame, distro_colors(["k3s"]))}
    assert plots["dist_offline_autonomy_stable_recover_s.png"].png.startswith(PNG_MAGIC)


def test_timeline_rows_are_relative_to_the_fault_start_and_name_the_distro() -> None:
    events = read_events(DATA / "timeline_run")
    assert events is not None
    rows = timeline_rows(events, {"20250103T000000Z-cccccc": "kwok"})
    assert set(rows) == {"offline_autonomy", "degraded_link"}
    first = rows["offline_autonomy"][0]
    assert first.label == "kwok cccccc outage_60s r0 edge-0"
    assert first.faults == [(0.0, 60.0, "cut edge-0,edge-1")]
    assert [s for _, _, s in first.spans] == ["True", "Unknown", "True", "True"]
    assert first.spans[1][0] == pytest.approx(40.2)
    assert first.spans[1][1] == pytest.approx(62.1)


# --- the written report --------------------------------------------------------------------


def test_html_opens_with_the_verdict_table_then_scenarios_then_conditions(
    tmp_path: Path,
) -> None:
    written = write_report([str(p) for p in VERSUS], tmp_path, baseline="k3s")
    page = outline(written.html.read_text())
    assert page.order[:3] == ["h1:edgebench report", "h2:Verdict", "table#verdict-table"]
    headings = [o for o in page.order if o.startswith("h2:")]
    assert headings == ["h2:Verdict", "h2:offline_autonomy", "h2:Conditions"]
    verdict_table = page.tables[0]
    assert verdict_table[0][:4] == ["scenario", "case", "metric", "distro"]
    assert [r[4] for r in verdict_table[1:3]] == ["better", "better"]
    assert page.images == 7  # 6 metrics and one timeline
    conditions = page.tables[-1]
    assert conditions[0][:6] == ["run", "distro", "provider", "version", "profile", "cut mode"]
    k3s = next(r for r in conditions if r[1] == "k3s")
    assert k3s[5] == "blackhole" and "node_monitor_grace_period=8s" in k3s[6]
    assert "kube-apiserver v1.31.4" in k3s[8] and "2 CPUs" in k3s[9]
    html = written.html.read_text()
    assert "http://" not in html and "https://" not in html  # self-contained


def test_write_report_into_the_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(DATA / "timeline_run", run)
    assert run_cli(["report", str(run)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) <= 3 and str(run / "report.md") in out[0]
    page = outline((run / "report.html").read_text())
    assert page.images == 5  # 3 strip plots, 2 timelines
    assert "h2:offline_autonomy" in page.order
    assert "(no run.json)" in page.tables[-1][1]
    pngs = sorted(p.name for p in (run / "plots").iterdir())
    assert "timeline_offline_autonomy.png" in pngs
    assert "dist_degraded_link_notready_flaps.png" in pngs
    assert all((run / "plots" / p).read_bytes().startswith(PNG_MAGIC) for p in pngs)


def test_no_events_file_means_no_timeline(tmp_path: Path) -> None:
    written = write_report([DATA / "two_distros"], tmp_path)
    names = {p.name for p in written.plots}
    assert names and not any(n.startswith("timeline_") for n in names)


def test_several_runs_and_nan_rows_and_out_dir(tmp_path: Path) -> None:
    runs = [str(DATA / "verdicts_base"), str(DATA / "verdicts_new")]
    assert run_cli(["report", *runs, "--out", str(tmp_path), "--no-plots"]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "2 run(s)" in text
    assert "| k3s | outage_300s | stable_recover_s | s | lower | 1 | 3 | 21 |" in text
    assert not (DATA / "verdicts_base" / "report.md").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["report", str(DATA / "bad_missing_columns.csv")],
        ["report", str(DATA / "no_such_run")],
        ["report", *map(str, VERSUS), "--baseline", "starlingx", "--no-plots"],
    ],
)
def test_cli_exit_2_on_bad_input(
    argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run_cli([*argv, "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("edgebench: error: ")


FOOTPRINT_NODE = (
    "agent_rss_baseline_mb",
    "agent_rss_peak_mb",
    "agent_cpu_baseline_s",
    "agent_cpu_offline_s",
    "agent_cpu_resync_s",
    "offline_bytes_attempted",
    "resync_bytes_up",
    "resync_bytes_down",
)
FOOTPRINT_SITE = (
    "all_recovered_s",
    "reconnect_p95_s",
    "apiserver_requests",
    "controlplane_rss_peak_mb",
    "controlplane_cpu_s",
)


def test_footprint_metrics_are_in_the_verdict_table_like_any_other(tmp_path: Path) -> None:
    """Per-node footprint rows and the site rows of mass_reconnect (node ""), two distros."""
    from bench.results.metrics import metric
    from bench.results.records import Recorder, RunContext

    runs = []
    for factor, distro in ((1.0, "vanilla"), (3.0, "kubeedge")):
        context = RunContext(f"20261127T000000Z-{distro}", "2026-11-27", distro, "local", "fast")
        recorder = Recorder(tmp_path / distro, context)
        for repeat in range(3):
            for name in FOOTPRINT_NODE:
                for node in ("edge-0", "edge-1"):
                    value = factor * (100 + repeat + (node == "edge-1"))
                    recorder.record(
                        scenario="mass_reconnect",
                        case="n10/blackhole",
                        metric_name=name,
                        value=value,
                        repeat=repeat,
                        node=node,
                    )
            for name in FOOTPRINT_SITE:
                recorder.record(
                    scenario="mass_reconnect",
                    case="n10/blackhole",
                    metric_name=name,
                    value=factor * (10 + repeat),
                    repeat=repeat,
                )
        runs.append(tmp_path / distro)
    written = write_report(runs, tmp_path / "report", plots=False, baseline="vanilla")
    verdict = outline(written.html.read_text()).tables[0]
    shown = {row[2]: row for row in verdict[1:]}
    for name in (*FOOTPRINT_NODE, *FOOTPRINT_SITE):
        row = shown[f"{name} ({metric(name).unit})"]
        assert row[3] == "kubeedge vs vanilla"
        assert row[4] == ("worse" if name in FOOTPRINT_NODE else "no difference shown")
        assert row[5] == ("6/6" if name in FOOTPRINT_NODE else "3/3")
    text = written.markdown.read_text()
    assert "kubeedge is WORSE than vanilla on resync_bytes_up in mass_reconnect/n10" in text
