"""edgebench installs as a package with its data and a pytest11 plugin, not as a checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_under_bench_is_installed() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.relative_to(ROOT).parts)
        for p in (ROOT / "bench").rglob("*")
        if p.is_dir()
        and "__pycache__" not in p.parts
        and ((p / "__init__.py").exists() or any(p.glob("*.py")))
    } | {"bench"}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def test_fixtures_install_under_their_own_name_not_fixtures() -> None:
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"edgebench_fixtures": "fixtures"}
    assert "fixtures" not in setuptools["packages"]
    assert PYPROJECT["project"]["entry-points"]["pytest11"] == {"edgebench": "bench.plugin"}


def _copy_source(dest: Path) -> None:
    """The checkout without build leftovers, results or caches, so the build sees no litter
    and leaves none in the repository."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache"}
        skip |= {".pytest_cache", ".benchmarks"}
        if Path(folder) == ROOT:
            skip |= {"build", "dist", "results"}
        return {n for n in names if n in skip or n.endswith(".egg-info")}

    shutil.copytree(ROOT, dest, ignore=ignore)


@pytest.mark.slow
def test_a_non_editable_install_works_outside_the_checkout(tmp_path: Path) -> None:
    """pip install (not editable) into a fresh target, then pytest outside the checkout
    lists --distro and the package carries kwok_stages.yaml and the Go sources."""
    src, target, outside = tmp_path / "src", tmp_path / "site", tmp_path / "elsewhere"
    _copy_source(src)
    outside.mkdir()
    # With setuptools >= 77 here the build needs no index; otherwise pip fetches it (or
    # takes it from its cache) into an isolated build environment.
    import setuptools

    new_enough = int(setuptools.__version__.split(".")[0]) >= 77
    isolation = ["--no-build-isolation"] if new_enough else []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "EDGEBENCH_"))}
    env["PYTHONPATH"] = str(target)
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *isolation,
         "--target", str(target), str(src)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    assert not (target / "fixtures").exists()
    pkg = target / "bench"
    assert (pkg / "distros" / "local" / "kwok_stages.yaml").is_file()
    assert (pkg / "py.typed").is_file() and (target / "edgebench_fixtures" / "py.typed").exists()
    gosrc = {p.relative_to(ROOT / "bench").as_posix() for p in (ROOT / "bench/build").rglob("*")}
    gosrc = {p for p in gosrc if p.startswith("build/gosrc/")}
    installed = {p.relative_to(pkg).as_posix() for p in (pkg / "build/gosrc").rglob("*")}
    assert gosrc <= installed and any(n.endswith(".patch") for n in installed)

    help_out = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"],
        cwd=outside, capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert help_out.returncode == 0, help_out.stderr
    assert "--distro=DISTRO" in help_out.stdout and "EDGEBENCH_DISTRO" in help_out.stdout
    assert not (outside / "results").exists(), "pytest --help must create no run folder"

    # A user's own test using the plugin's fixtures, outside any checkout.
    (outside / "test_mine.py").write_text(
        "import bench, edgebench_fixtures\n"
        "def test_mine(distro_name, cluster_spec, recorder):\n"
        f"    assert bench.__file__.startswith({str(target)!r})\n"
        f"    assert edgebench_fixtures.__file__.startswith({str(target)!r})\n"
        "    assert distro_name == 'vanilla' and cluster_spec.edge_nodes == 2\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--distro=vanilla",
         "--edge-nodes=2", "--results-dir=res", "--run-id=r1", "test_mine.py"],
        cwd=outside, capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert (outside / "res" / "r1" / "run.json").is_file()
