"""pytest options and the distro registry, exercised through a real pytest run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.distros import distro_names, driver_class, provider_for
from bench.errors import UnknownDistroError

pytest_plugins = ["pytester"]


ROOT = Path(__file__).resolve().parent.parent


def _conftest(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest(
        "pytest_plugins = ['bench.source_checkout', 'edgebench_fixtures.options', "
        "'edgebench_fixtures.results']\n"
    )


def test_unknown_distro_is_a_usage_error_listing_valid_names(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _conftest(pytester, monkeypatch)
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess("--distro=k3z")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*unknown distro 'k3z'*valid distros: k3s, kubeedge, kwok, starlingx, vanilla*"]
    )


def test_unknown_provider_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _conftest(pytester, monkeypatch)
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess("--distro=kwok", "--provider=podman")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no provider 'podman'*valid providers: docker, local*"])


def test_repeat_parametrizes_with_readable_ids(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _conftest(pytester, monkeypatch)
    pytester.makepyfile("def test_x(repeat): assert repeat in (0, 1, 2)")
    result = pytester.runpytest_subprocess("--repeat=3", "-v", f"--results-dir={pytester.path}")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_x[[]r0[]]*", "*test_x[[]r2[]]*"])


def test_run_folder_has_run_json_and_junit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _conftest(pytester, monkeypatch)
    pytester.makepyfile(
        "def test_x(recorder):\n"
        "    recorder.record(scenario='s', case='c', metric_name='detect_s', value=1)\n"
    )
    result = pytester.runpytest_subprocess(
        f"--results-dir={pytester.path / 'res'}", "--run-id=myrun", "--profile=default"
    )
    result.assert_outcomes(passed=1)
    run = pytester.path / "res" / "myrun"
    assert (run / "measurements.csv").read_text().count("\n") == 2
    assert (run / "junit.xml").exists()
    import json

    info = json.loads((run / "run.json").read_text())
    assert info["profile"] == "default" and info["distro"] == "kwok"
    assert info["ended_at"]
    result.stdout.fnmatch_lines(["*edgebench: 1 measurements*", "*detect_s*n=1*median=1*"])


def test_registry() -> None:
    assert "kwok" in distro_names()
    assert provider_for("kwok", None) == "local"
    assert driver_class("kwok").name == "kwok"
    with pytest.raises(UnknownDistroError, match="valid distros"):
        provider_for("nope", None)


def test_junit_xml_is_redacted_too(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _conftest(pytester, monkeypatch)
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlc2ln"
    pytester.makepyfile(f"def test_x():\n    assert False, 'Authorization: Bearer {jwt}'\n")
    result = pytester.runpytest_subprocess(
        f"--results-dir={pytester.path / 'res'}", "--run-id=leaky"
    )
    result.assert_outcomes(failed=1)
    junit = (pytester.path / "res" / "leaky" / "junit.xml").read_text()
    assert "<redacted>" in junit and jwt not in junit
