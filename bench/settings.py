"""The one table of cluster and run settings, shared by the pytest plugin and the CLI.

Each setting is declared once here: its name, type, default, help text, ``EDGEBENCH_*``
environment variable and validation. ``edgebench_fixtures.options`` turns the table into
pytest options and ``edgebench up`` into its arguments; a new setting is one more row.

Precedence: the command line, then ``EDGEBENCH_<NAME>``, then the default. Options are
declared with ``default=None`` so "not given" is visible; :func:`resolve` applies the rest
and validates, raising :class:`~bench.errors.UsageError` listing the valid values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from bench.errors import UsageError
from bench.faults.base import CUT_MODES as FAULT_CUT_MODES

#: how a cut may sever a link: connections reset, or silently dropped (``bench.faults``)
CUT_MODES: tuple[str, ...] = FAULT_CUT_MODES
_CLUSTER_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _distros() -> list[str]:
    from bench.distros import distro_names

    return distro_names()


def _profiles() -> list[str]:
    from bench.model import PROFILES

    return list(PROFILES)


# Checks raise UsageError saying what is wrong; Setting.validate prefixes where it came from.


def _check_positive(value: int) -> None:
    if value < 1:
        raise UsageError(f"must be at least 1, got {value}")


def _check_edge_nodes(value: int) -> None:
    if not 1 <= value <= 500:
        raise UsageError(f"must be between 1 and 500, got {value}")


def _check_cluster_name(value: str | None) -> None:
    # the rule of ClusterSpec (bench.distros.base), checked before anything starts
    if value is not None and not _CLUSTER_NAME.match(value):
        raise UsageError(
            f"{value!r} must be 1 to 42 lower-case letters, digits and dashes, "
            "starting and ending with a letter or digit"
        )


def _check_run_id(value: str | None) -> None:
    if value is not None and (not value or "/" in value or value in (".", "..")):
        raise UsageError(f"{value!r} must be a folder name (no '/')")


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _parse_bool(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError(f"{text!r} is not one of {', '.join(_TRUE + _FALSE)}")


def _parse_list(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))


#: "value"; "list": comma-separated, each item in ``choices``; "flag": ``--x``/``--no-x``
Kind = Literal["value", "list", "flag"]


@dataclass(frozen=True)
class Setting:
    """One row of the table."""

    name: str  # Python name: fixture/option dest, ``EDGEBENCH_<NAME>``
    help: str
    default: Any = None
    parse: Callable[[str], Any] = str  # from a command-line or environment string
    choices: Callable[[], Sequence[str]] | None = None  # every value (each list item) in these
    check: Callable[[Any], None] | None = None  # raises UsageError
    kind: Kind = "value"
    metavar: str | None = None
    label: str = ""  # what one value is called in errors ("cut mode"); default: the name
    shown_default: str = ""  # the default as --help says it, when it is not a plain value

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "EDGEBENCH_" + self.name.upper()

    def full_help(self, default: Any = None) -> str:
        default = self.default if default is None else default
        if isinstance(default, tuple):
            default = ",".join(default)
        shown = self.shown_default or ("auto" if default is None else default)
        text = f"{self.help} (default {shown}; env {self.env})"
        if self.choices is not None:
            text += f"; one of {', '.join(self.choices())}"
        return text.replace("%", "%%")  # argparse formats help with %

    def argparse_kwargs(self, default: Any = None) -> dict[str, Any]:
        """Keyword arguments for ``add_argument`` / pytest's ``addoption`` (not ``flags``)."""
        kwargs: dict[str, Any] = {
            "dest": self.name,
            "default": None,
            "help": self.full_help(default),
        }
        if self.kind == "flag":
            kwargs["action"] = "store_const"
            kwargs["const"] = True
        else:
            kwargs["metavar"] = self.metavar or self.name.upper()
        return kwargs

    def from_text(self, text: str, source: str) -> Any:
        try:
            return self.parse(text)
        except ValueError as exc:
            raise UsageError(f"{source}: {exc}") from None

    def validate(self, value: Any, source: str) -> None:
        if value is None:
            return
        if self.choices is not None:
            valid = list(self.choices())
            items = value if self.kind == "list" else (value,)
            label = self.label or self.name.replace("_", " ")
            if self.kind == "list" and not items:
                raise UsageError(f"{source} needs at least one of: {', '.join(valid)}")
            for item in items:
                if item not in valid:
                    raise UsageError(
                        f"{source}: unknown {label} {item!r}; valid {label}s: {', '.join(valid)}"
                    )
        if self.check is not None:
            try:
                self.check(value)
            except UsageError as exc:
                raise UsageError(f"{source}: {exc}") from None


SETTINGS: tuple[Setting, ...] = (
    Setting("distro", "distribution to measure", "kwok", choices=_distros),
    Setting("provider", "how to stand the distribution up", shown_default="the distro's own"),
    Setting("profile", "timing profile: fast (short grace periods, for CI) or default",
            "fast", choices=_profiles),
    Setting("edge_nodes", "number of edge nodes", 3, _parse_int, check=_check_edge_nodes,
            metavar="N"),
    Setting("repeat", "repeat every scenario case N times", 1, _parse_int,
            check=_check_positive, metavar="N"),
    Setting("results_dir", "folder that receives the run folder <run-id>/", Path("results"),
            Path, metavar="DIR"),
    Setting("run_id", "name of this run's folder", check=_check_run_id,
            shown_default="UTC time and a random suffix"),
    Setting("cluster_name", "name of the cluster", check=_check_cluster_name, metavar="NAME",
            shown_default="eb-<run id>, unique per session"),
    Setting("cut", "comma-separated link cut modes the cut cases run with", ("blackhole",),
            _parse_list, choices=lambda: CUT_MODES, kind="list", metavar="MODES",
            label="cut mode"),
    Setting("netns", "edge nodes in their own network namespaces, with kernel faults there "
            "(docker: in the agents' containers)", None, _parse_bool,
            kind="flag", shown_default="when possible"),
    Setting("lab", "lab file of an existing cluster reached over SSH (--provider=remote; "
            "docs/labs.md)", None, Path, metavar="LAB", shown_default="none"),
)  # fmt: skip
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def add_arguments(
    add: Callable[..., Any],
    names: Iterable[str] | None = None,
    *,
    flags: Mapping[str, Sequence[str]] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Declare the settings ``names`` (all by default) through ``add``, which is
    ``argparse.ArgumentParser.add_argument`` or a pytest option group's ``addoption``.

    ``flags`` renames options (``{"cluster_name": ["--name", "--cluster-name"]}``);
    ``defaults`` replaces defaults (pass the same to :func:`resolve`).
    """
    for name in names if names is not None else BY_NAME:
        s = BY_NAME[name]
        own = list((flags or {}).get(name, [s.flag]))
        default = (defaults or {}).get(name)
        if default is not None:
            s = replace(s, shown_default="")
        add(*own, **s.argparse_kwargs(default))
        if s.kind == "flag":
            negative = ["--no-" + f.removeprefix("--") for f in own]
            add(*negative, dest=s.name, action="store_const", const=False,
                help=f"the opposite of {own[0]}")  # fmt: skip


def resolve(
    given: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    names: Iterable[str] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every setting of ``names``: command line (``given``, None = not given) over
    ``EDGEBENCH_*`` over the default; parsed, validated, with the provider filled in."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name in names if names is not None else BY_NAME:
        s = BY_NAME[name]
        value = given.get(name)
        source = s.flag
        if isinstance(value, str) and s.parse is not str:
            value = s.from_text(value, s.flag)
        if value is None and environ.get(s.env, "") != "":
            source = s.env
            value = s.from_text(environ[s.env], s.env)
        if value is None:
            value = (defaults or {}).get(name, s.default)
            source = f"default {s.flag}"
        s.validate(value, source)
        values[name] = value
    if "distro" in values:
        provider = values.get("provider")
        if provider is None and values.get("lab") is not None:
            provider = "remote"  # a lab file means an existing cluster
        values["provider"] = check_driver(values["distro"], provider)
        if values["provider"] == "remote" and "lab" in values and values["lab"] is None:
            raise UsageError(remote_needs_lab(values["distro"]))
    return values


def remote_needs_lab(distro: str) -> str:
    """What to say when a distro runs on the remote provider without a lab file."""
    return (
        f"distro {distro!r} runs against a cluster you already have: "
        f"pytest suites/ --distro={distro} --provider=remote --lab lab.yaml "
        "(lab file: docs/labs.md; check it with edgebench lab check lab.yaml), "
        f"or --distro={distro} --provider=docker to start it in containers on this machine "
        "where the docker provider is installed"
    )


def check_driver(distro: str, provider: str | None) -> str:
    """The provider ``distro`` runs on; UsageError when there is no such driver."""
    from bench.distros import driver_class, provider_for

    provider = provider_for(distro, provider)
    driver_class(distro, provider)  # UnknownDistroError (a UsageError) naming valid providers
    return provider


def default_cluster_name(run_id: str) -> str:
    """A cluster name unique to a run: ``eb-`` and the run id's last characters, so two
    sessions on one machine never share a cluster (or its state directory)."""
    tail = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")
    tail = re.sub(r"-{2,}", "-", tail)[-38:].strip("-")
    return f"eb-{tail or 'run'}"


def run_paths(runs: Sequence[str], results_dir: Path | str | None) -> list[str]:
    """Run arguments of ``edgebench report``/``compare``: a path as given, or else a run id
    found under ``results_dir`` (``--results-dir``, ``EDGEBENCH_RESULTS_DIR``, ``results``)."""
    folder = Path(resolve({"results_dir": results_dir}, None, ("results_dir",))["results_dir"])
    return [
        str(folder / run) if not Path(run).exists() and (folder / run).exists() else run
        for run in runs
    ]
