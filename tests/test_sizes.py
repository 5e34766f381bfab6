"""Case sizes read from case names, each metric against them, and the report's size plots."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from test_report import outline

from bench.results.analysis import load_measurements
from bench.results.plots import draw_growth, size_plots
from bench.results.records import Recorder, RunContext
from bench.results.report import distro_colors, write_report
from bench.results.sizes import BANDWIDTH, NODES, UNCAPPED, case_size, growth, sized_cases

DISTROS = ("vanilla", "kubeedge")
REPEATS = 3
NODES_PER_CASE = 2


# --- the parser ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "quantity", "value", "series"),
    [
        ("n10/blackhole", NODES, 10, "n*/blackhole"),
        ("n200/reset", NODES, 200, "n*/reset"),
        ("n50", NODES, 50, "n*"),
        (
            "cm-scale-delete-create-64kBps/reset",
            BANDWIDTH,
            64,
            "cm-scale-delete-create-*kBps/reset",
        ),
        ("bandwidth-8KBps", BANDWIDTH, 8, "bandwidth-*kBps"),
        ("x-0.5kBps/blackhole", BANDWIDTH, 0.5, "x-*kBps/blackhole"),
    ],
)
def test_a_case_name_with_a_size(case: str, quantity: object, value: float, series: str) -> None:
    size = case_size(case)
    assert size is not None
    assert (size.quantity, size.value, size.series) == (quantity, value, series)
    assert size.label == f"{value:g}"


@pytest.mark.parametrize(
    "case",
    [
        "cm-scale-delete-create/reset",  # uncapped only next to a capped case of its series
        "long-evictable/blackhole",
        "outage_60s",
        "latency-200ms",  # a fault's severity, not a size
        "loss-5pct",
        "down-1.5x-grace",
        "nodes/blackhole",
        "n10x/blackhole",
        "tolerating/n10",  # the node count leads the name
        "x-64kBpsy/reset",
        "",
    ],
)
def test_a_case_name_without_a_size(case: str) -> None:
    assert case_size(case) is None


def test_the_uncapped_case_is_sized_only_beside_a_capped_one_of_its_series() -> None:
    cases = [
        "cm-scale-delete-create/blackhole",
        "cm-scale-delete-create-64kBps/blackhole",
        "cm-scale-delete-create/reset",  # its capped sibling ran in another mode: no size
        "n10/blackhole",
    ]
    sizes = sized_cases(cases)
    assert set(sizes) == {
        "cm-scale-delete-create/blackhole",
        "cm-scale-delete-create-64kBps/blackhole",
        "n10/blackhole",
    }
    uncapped = sizes["cm-scale-delete-create/blackhole"]
    assert uncapped.value == UNCAPPED and uncapped.label == "uncapped"
    assert uncapped.series == sizes["cm-scale-delete-create-64kBps/blackhole"].series
    assert sized_cases(["cm-scale-delete-create/blackhole"]) == {}


# --- generated runs ------------------------------------------------------------------------


def value_of(distro: str, size: float, repeat: int, node: int) -> float:
    """Made-up values: kubeedge twice vanilla's, growing with the size, spread by repeat and
    node (so a repeat's median over its nodes differs from any one node's value)."""
    scale = 2.0 if distro == "kubeedge" else 1.0
    base = 100.0 if math.isinf(size) else size
    return scale * base * (1 + 0.1 * repeat) + node


def write_runs(
    root: Path, scenario: str, cases: Sequence[str], sizes: dict[str, float]
) -> list[Path]:
    """One run folder per distro, written by the real Recorder: per case and repeat a node
    metric (stable_recover_s on two nodes) and a site metric (all_recovered_s, node "")."""
    runs = []
    for distro in DISTROS:
        run_id = f"20261127T000000Z-{root.name}-{distro}"
        context = RunContext(run_id, "2026-11-27", distro, "local", "fast")
        recorder = Recorder(root / distro, context)
        for case in cases:
            for repeat in range(REPEATS):
                for node in range(NODES_PER_CASE):
                    recorder.record(
                        scenario=scenario,
                        case=case,
                        metric_name="stable_recover_s",
                        value=value_of(distro, sizes[case], repeat, node),
                        repeat=repeat,
                        node=f"edge-{node}",
                    )
                recorder.record(
                    scenario=scenario,
                    case=case,
                    metric_name="all_recovered_s",
                    value=value_of(distro, sizes[case], repeat, 5),
                    repeat=repeat,
                )
        runs.append(root / distro)
    return runs


@pytest.fixture
def mass_reconnect(tmp_path: Path) -> list[Path]:
    cases = ["n10/blackhole", "n50/blackhole"]
    return write_runs(tmp_path / "runs", "mass_reconnect", cases, {c: c_size(c) for c in cases})


def c_size(case: str) -> float:
    size = case_size(case)
    assert size is not None
    return size.value


# --- each metric against the sizes ---------------------------------------------------------


def test_growth_has_a_point_per_run_and_repeat_and_the_pooled_medians(
    mass_reconnect: list[Path],
) -> None:
    found = {g.metric: g for g in growth(load_measurements(mass_reconnect))}
    assert list(found) == ["stable_recover_s", "all_recovered_s"]  # headline first
    node = found["stable_recover_s"]
    assert (node.scenario, node.series, node.quantity) == ("mass_reconnect", "n*/blackhole", NODES)
    assert node.sizes == [10.0, 50.0] and node.per_node and node.empty == ()
    assert len(node.points) == len(DISTROS) * 2 * REPEATS
    one = node.points[(node.points["distro"] == "kubeedge") & (node.points["size"] == 50)]
    # repeat 1 of kubeedge at n50: the median of its two nodes, 2*50*1.1 + 0 and + 1
    assert one.set_index("repeat")["value"][1] == pytest.approx(110.5)
    medians = node.medians.set_index(["distro", "size"])
    assert medians.loc[("vanilla", 10.0), "median"] == pytest.approx(11.5)  # 6 values pooled
    assert medians.loc[("vanilla", 10.0), "n"] == REPEATS * NODES_PER_CASE
    site = found["all_recovered_s"]
    assert not site.per_node and len(site.points) == len(DISTROS) * 2 * REPEATS


def test_a_series_with_one_size_has_no_growth(tmp_path: Path) -> None:
    runs = write_runs(tmp_path, "mass_reconnect", ["n10/blackhole"], {"n10/blackhole": 10})
    assert growth(load_measurements(runs)) == []
    plain = ["long-evictable/blackhole", "short-evictable/blackhole"]
    runs = write_runs(tmp_path / "plain", "offline_autonomy", plain, dict.fromkeys(plain, 1.0))
    assert growth(load_measurements(runs)) == []


def test_two_modes_are_two_series_never_one_line(tmp_path: Path) -> None:
    cases = ["n10/blackhole", "n50/blackhole", "n10/reset"]
    runs = write_runs(tmp_path, "mass_reconnect", cases, {c: c_size(c) for c in cases})
    assert {g.series for g in growth(load_measurements(runs))} == {"n*/blackhole"}


def test_a_size_with_only_empty_values_is_named(tmp_path: Path) -> None:
    cases = ["n10/blackhole", "n50/blackhole", "n200/blackhole"]
    runs = write_runs(tmp_path, "mass_reconnect", cases, {c: c_size(c) for c in cases})
    context = RunContext("20261127T010000Z-ke", "2026-11-27", "kubeedge", "local", "fast")
    Recorder(tmp_path / "late", context).record(
        scenario="mass_reconnect",
        case="n500/blackhole",
        metric_name="all_recovered_s",
        value=None,
        note="not all nodes recovered within 300 s",
    )
    found = {g.metric: g for g in growth(load_measurements([*runs, tmp_path / "late"]))}
    site = found["all_recovered_s"]
    assert site.sizes == [10.0, 50.0, 200.0]
    assert site.empty == ("n500/blackhole/kubeedge: not all nodes recovered within 300 s",)


# --- the plots -----------------------------------------------------------------------------


def xy(data: object) -> list[float]:
    """A line's x or y data as floats."""
    return [float(v) for v in np.asarray(data, dtype=float)]


def test_the_drawn_lines_are_each_distros_medians_in_its_colour(
    mass_reconnect: list[Path],
) -> None:
    from matplotlib.figure import Figure

    colors = distro_colors(list(DISTROS))
    found = growth(load_measurements(mass_reconnect))[0]
    ax = Figure().add_subplot()
    draw_growth(ax, found, colors)
    lines = {line.get_color(): line for line in ax.get_lines() if line.get_linestyle() == "-"}
    assert set(lines) == {colors["vanilla"], colors["kubeedge"]}
    vanilla = lines[colors["vanilla"]]
    assert xy(vanilla.get_xdata()) == [10.0, 50.0]
    assert xy(vanilla.get_ydata()) == pytest.approx([11.5, 55.5])
    points = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert sum(len(xy(p.get_xdata())) for p in points) == len(DISTROS) * 2 * REPEATS
    assert ax.get_xlim()[0] == 0 and ax.get_ylim()[0] == 0


def test_uncapped_is_its_own_size_drawn_apart_and_said_so(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    cases = ["cm-scale-delete-create/blackhole", "cm-scale-delete-create-64kBps/blackhole"]
    sizes = {cases[0]: UNCAPPED, cases[1]: 64.0}
    runs = write_runs(tmp_path, "metadata_resync", cases, sizes)
    plots = size_plots(load_measurements(runs), distro_colors(list(DISTROS)))
    names = [p.name for p in plots]
    assert names == [
        "size_metadata_resync_cm-scale-delete-create-_kBps_blackhole_stable_recover_s.png",
        "size_metadata_resync_cm-scale-delete-create-_kBps_blackhole_all_recovered_s.png",
    ]
    caption = plots[0].caption
    assert caption.startswith(
        "How stable_recover_s changes with the link's bandwidth cap (1 kB = 1000 bytes) "
        "(kB/s; cases cm-scale-delete-create-*kBps/blackhole), one colour per distro. "
        "stable_recover_s (s): link restore to the node Ready"
    )
    assert "'uncapped' is the case run without a cap" in caption and "not to scale" in caption
    found = growth(load_measurements(runs))[0]
    ax = Figure().add_subplot()
    draw_growth(ax, found, distro_colors(list(DISTROS)))
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["64", "uncapped"]
    assert ax.get_xticks()[1] > 64  # to the right of every cap


def test_the_report_shows_the_size_plots_of_sized_scenarios_only(
    mass_reconnect: list[Path], tmp_path: Path
) -> None:
    capped = ["cm-scale-delete-create-64kBps/blackhole"]  # one size: no size plot
    single = write_runs(tmp_path / "single", "metadata_resync", capped, {capped[0]: 64.0})
    written = write_report([*mass_reconnect, *single], tmp_path / "report")
    names = {p.name for p in written.plots}
    sized = sorted(n for n in names if n.startswith("size_"))
    assert sized == [
        "size_mass_reconnect_n_blackhole_all_recovered_s.png",
        "size_mass_reconnect_n_blackhole_stable_recover_s.png",
    ]
    assert "dist_metadata_resync_stable_recover_s.png" in names  # strip plots as before
    text = (tmp_path / "report" / "report.md").read_text()
    assert "![mass_reconnect n*/blackhole: all_recovered_s against nodes]" in text
    assert "How all_recovered_s grows with the number of edge nodes cut and restored" in text
    page = outline(written.html.read_text())
    assert page.images == len(names)
    verdict = page.tables[0]
    assert ["mass_reconnect", "n50/blackhole", "all_recovered_s (s)", "kubeedge vs vanilla"] in [
        row[:4] for row in verdict
    ]
