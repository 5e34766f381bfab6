"""The nightly workflow and the script it wraps (``.ci/nightly``), without a cluster.

``.ci/nightly run`` needs a built distro and is exercised by the workflow itself; here the
analysis steps run on golden run folders, the whole flow in ``--dry-run``, and the workflow
file through actionlint (built from its Go module, see ``ACTIONLINT``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"
SCRIPT = REPO / ".ci" / "nightly"
WORKFLOW = REPO / ".github" / "workflows" / "nightly.yml"
#: Where .ci/run builds actionlint: GOBIN=$EDGEBENCH_HOME/ci/bin GOFLAGS=-mod=mod
#: go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.7
ACTIONLINT_VERSION = "v1.7.7"


def _actionlint() -> str | None:
    home = Path(os.environ.get("EDGEBENCH_HOME", Path.home() / ".cache" / "edgebench"))
    built = home / "ci" / "bin" / "actionlint"
    if built.is_file() and os.access(built, os.X_OK):
        return str(built)
    return shutil.which("actionlint")


def nightly(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run .ci/nightly with this interpreter's edgebench and python first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    full = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "PYTHON": sys.executable,
        **(env or {}),
    }
    full.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=full,
        check=False,
    )


@pytest.fixture
def night(tmp_path: Path) -> dict[str, Path]:
    """Tonight's kwok run (+25 % stable_recover_s), a kubeedge run and 5 earlier kwok nights."""
    out, history = tmp_path / "nightly", tmp_path / "history"
    shutil.copytree(DATA / "nightly_regressed", out / "N1-kwok")
    shutil.copytree(DATA / "versus" / "kubeedge", out / "N1-kubeedge")
    shutil.copytree(DATA / "nightly", history / "kwok")
    return {"out": out, "history": history}


def test_the_workflow_passes_actionlint() -> None:
    binary = _actionlint()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "actionlint is not built: .ci/run must run GOBIN=$EDGEBENCH_HOME/ci/bin "
                f"GOFLAGS=-mod=mod go install github.com/rhysd/actionlint/cmd/actionlint@"
                f"{ACTIONLINT_VERSION}"
            )
        pytest.skip("actionlint not built (see ACTIONLINT_VERSION for the install command)")
    done = subprocess.run(
        [binary, str(WORKFLOW)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_workflow_is_a_thin_wrapper_around_the_script() -> None:
    text = WORKFLOW.read_text()
    for step in (".ci/nightly run", ".ci/nightly analyse", ".ci/nightly publish"):
        assert step in text
    assert "hashFiles('bench/build/versions.py'" in text
    for distro in ("kwok", "vanilla", "kubeedge", "k3s"):
        assert f"distro: {distro}" in text


def test_analyse_gates_compares_and_reports(night: dict[str, Path]) -> None:
    done = nightly("analyse", "--out", str(night["out"]), "--history", str(night["history"]))
    assert done.returncode == 1, done.stderr  # kwok's stable_recover_s regressed
    assert ".ci/nightly: kwok regressed" in done.stderr
    assert "no history for kubeedge" in done.stderr
    summary = (night["out"] / "summary.md").read_text()
    assert "| kwok | offline_autonomy | outage_60s | stable_recover_s | 15 | 3 |" in summary
    assert "regressed" in summary
    # the trend includes tonight, and the report (verdict first) follows
    assert "20250406T020000Z-night6 | 3 | 15 |" in summary
    assert summary.index("## Verdict") > summary.index("## Gate: kwok")
    assert (night["out"] / "report" / "report.html").is_file()
    assert (night["out"] / "versus.md").read_text().startswith("| scenario | case | metric |")


def test_a_quiet_night_passes(night: dict[str, Path]) -> None:
    shutil.rmtree(night["out"] / "N1-kwok")
    shutil.copytree(DATA / "nightly_noise", night["out"] / "N1-kwok")
    done = nightly("analyse", "--out", str(night["out"]), "--history", str(night["history"]))
    assert done.returncode == 0, done.stderr


def test_publish_appends_run_folders_per_distro_without_reports(night: dict[str, Path]) -> None:
    (night["out"] / "N1-kwok" / "plots").mkdir()
    (night["out"] / "N1-kwok" / "report.md").write_text("x")
    args = ["publish", "--out", str(night["out"]), "--history", str(night["history"])]
    assert nightly(*args).returncode == 0
    kwok = night["history"] / "kwok" / "N1-kwok"
    assert (kwok / "measurements.csv").is_file()
    assert not (kwok / "plots").exists() and not (kwok / "report.md").exists()
    assert (night["history"] / "kubeedge" / "N1-kubeedge" / "run.json").is_file()
    again = nightly(*args)
    assert again.returncode == 0 and "exists: not overwritten" in again.stderr


def test_dry_run_prints_every_step_and_runs_nothing(tmp_path: Path) -> None:
    out = tmp_path / "nightly"
    done = nightly(
        "all",
        "--dry-run",
        "--distros",
        "kwok vanilla",
        "--repeat",
        "3",
        "--out",
        str(out),
        "--history",
        str(tmp_path / "history"),
        "--night",
        "N9",
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("+ ")]
    assert any("-m pytest suites/ --distro=kwok --profile=fast --repeat=3" in x for x in lines)
    assert any(f"--results-dir={out} --run-id=N9-vanilla" in x for x in lines)
    assert any(x.startswith("+ edgebench versus") for x in lines)
    assert any(x.startswith("+ edgebench report") for x in lines)
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    "args",
    [["frobnicate"], ["analyse", "--bogus"], ["run"], ["all", "--repeat", "three"]],
)
def test_bad_usage_exits_2(args: list[str], tmp_path: Path) -> None:
    done = nightly(*args, "--out", str(tmp_path / "x"))
    assert done.returncode == 2, done.stderr


def test_relative_paths_are_the_callers(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(SCRIPT), "all", "--dry-run", "--distros", "kwok", "--out", "here"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"--results-dir={tmp_path / 'here'}" in done.stderr
