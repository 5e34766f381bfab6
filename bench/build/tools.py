"""Build, cache and locate the real binaries edgebench runs.

Every tool is built from its published Go module with the local Go toolchain into
``$EDGEBENCH_HOME/tools/<set>/<version>/bin`` (``EDGEBENCH_HOME`` defaults to
``~/.cache/edgebench``). A tool set that is already there is never rebuilt.

A tool set is one consumer Go module that requires the published module at a pinned version
(see :mod:`bench.build.versions`) and builds one or more of its commands.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.build import versions
from bench.errors import BuildError, ToolchainMissingError, ToolError, UsageError

MIN_GO = (1, 23)


def edgebench_home() -> Path:
    """``$EDGEBENCH_HOME``, or ``~/.cache/edgebench``."""
    return Path(os.environ.get("EDGEBENCH_HOME") or Path.home() / ".cache" / "edgebench")


@dataclass(frozen=True)
class ToolSet:
    """One consumer Go module that builds one or more binaries at a pinned version."""

    name: str
    version: str
    module: str
    binaries: dict[str, str]  # binary name -> Go package path
    ldflags: tuple[str, ...] = ()
    go_directive: str = "1.23.0"
    # Computes replace directives once the required module's go.mod has been downloaded.
    replaces: Callable[[ToolSet, Path], dict[str, str]] | None = field(default=None)
    # Writes the whole consumer module instead (for modules that need more than replaces).
    prepare: Callable[[ToolSet, str, dict[str, str]], None] | None = field(default=None)
    cgo: bool = False

    @property
    def bin_dir(self) -> Path:
        return edgebench_home() / "tools" / self.name / self.version / "bin"

    @property
    def src_dir(self) -> Path:
        return edgebench_home() / "src" / f"{self.name}-{self.version}"

    def path(self, binary: str) -> Path:
        return self.bin_dir / binary

    def installed(self) -> bool:
        return all(
            self.path(b).is_file() and os.access(self.path(b), os.X_OK) for b in self.binaries
        )


def _kubernetes_staging_replaces(ts: ToolSet, gomod: Path) -> dict[str, str]:
    """Replace each ``k8s.io/X v0.0.0`` staging requirement with its published v0.Y.Z."""
    minor_patch = ts.version.removeprefix("v1.")
    staging = set(re.findall(r"^\s+(k8s\.io/[\w.-]+) v0\.0\.0$", gomod.read_text(), re.M))
    return {mod: f"v0.{minor_patch}" for mod in sorted(staging)}


def _k8s_version_ldflags(version: str) -> tuple[str, ...]:
    major, minor = version.removeprefix("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return tuple(flags)


_GOSRC = Path(__file__).with_name("gosrc")


def _prepare_kubeedge(ts: ToolSet, go: str, env: dict[str, str]) -> None:
    """KubeEdge's consumer module: its own replace block (a fork of Kubernetes), beehive
    rebuilt from the newest version the module proxy serves plus edgebench's compatibility
    patch (the proxy does not serve the beehive KubeEdge v1.20 was released with), and
    ``hollowedge``, edgebench's configurable variant of KubeEdge's edgemark."""
    src = ts.src_dir
    shutil.rmtree(src, ignore_errors=True)
    (src / "cmd").mkdir(parents=True)
    own = _GOSRC / "kubeedge"
    shutil.copy(own / "go.mod", src / "go.mod")
    shutil.copy(own / "go.sum", src / "go.sum")
    shutil.copytree(own / "hollowedge", src / "cmd" / "hollowedge")
    cloudcore = "github.com/kubeedge/kubeedge/cloud/cmd/cloudcore"
    (src / "tools.go").write_text(f'//go:build tools\n\npackage tools\n\nimport _ "{cloudcore}"\n')
    # The CRDs cloudcore needs in the API server, from the release's own source.
    release = json.loads(
        _go(
            go,
            ["mod", "download", "-json", f"{ts.module}@{ts.version}"],
            src,
            f"downloading {ts.module}",
            env,
        )
    )
    crds = ts.bin_dir.parent / "crds"
    shutil.rmtree(crds, ignore_errors=True)
    for group in ("devices", "reliablesyncs", "router", "apps", "operations", "policy"):
        shutil.copytree(Path(release["Dir"]) / "build" / "crds" / group, crds / group)
    for path in crds.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    info = json.loads(
        _go(
            go,
            ["mod", "download", "-json", f"github.com/kubeedge/beehive@{versions.BEEHIVE_BASE}"],
            src,
            "downloading beehive",
            env,
        )
    )
    beehive = src / "beehive"
    shutil.copytree(info["Dir"], beehive)
    for path in sorted(beehive.rglob("*"), reverse=True):
        path.chmod(0o755 if path.is_dir() else 0o644)
        if path.name.endswith("_test.go"):
            path.unlink()
    for name in ("test", "Godeps"):
        shutil.rmtree(beehive / name, ignore_errors=True)
    (beehive / "go.sum").unlink(missing_ok=True)
    patch = subprocess.run(
        ["patch", "-p1", "--quiet", "-i", str(own / "beehive-compat.patch")],
        cwd=beehive,
        capture_output=True,
        text=True,
    )
    if patch.returncode != 0:
        raise BuildError(f"applying beehive-compat.patch failed:\n{patch.stdout}{patch.stderr}")


def _kubeedge_ldflags(version: str) -> tuple[str, ...]:
    pkg = "github.com/kubeedge/kubeedge/pkg/version"
    major, minor = version.removeprefix("v").split(".")[:2]
    return (
        f"-X {pkg}.gitVersion={version}",
        f"-X {pkg}.gitMajor={major}",
        f"-X {pkg}.gitMinor={minor}",
        f"-X {pkg}.gitTreeState=clean",
    )


TOOLSETS: dict[str, ToolSet] = {
    ts.name: ts
    for ts in (
        ToolSet(
            name="toxiproxy",
            version=versions.TOXIPROXY,
            module="github.com/Shopify/toxiproxy/v2",
            binaries={"toxiproxy-server": "github.com/Shopify/toxiproxy/v2/cmd/server"},
            ldflags=(f"-X github.com/Shopify/toxiproxy/v2.Version={versions.TOXIPROXY}",),
        ),
        ToolSet(
            name="etcd",
            version=versions.ETCD,
            module="go.etcd.io/etcd/server/v3",
            binaries={"etcd": "go.etcd.io/etcd/server/v3"},
        ),
        ToolSet(
            name="kubernetes",
            version=versions.KUBERNETES,
            module="k8s.io/kubernetes",
            binaries={
                "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
                "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
                "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
                "kubemark": "k8s.io/kubernetes/cmd/kubemark",
            },
            ldflags=_k8s_version_ldflags(versions.KUBERNETES),
            replaces=_kubernetes_staging_replaces,
        ),
        ToolSet(
            name="kwok",
            version=versions.KWOK,
            module="sigs.k8s.io/kwok",
            binaries={"kwok": "sigs.k8s.io/kwok/cmd/kwok"},
        ),
        ToolSet(
            name="kubeedge",
            version=versions.KUBEEDGE,
            module="github.com/kubeedge/kubeedge",
            binaries={
                "cloudcore": "github.com/kubeedge/kubeedge/cloud/cmd/cloudcore",
                "hollowedge": "edgebench.local/kubeedge/cmd/hollowedge",
            },
            ldflags=_kubeedge_ldflags(versions.KUBEEDGE),
            prepare=_prepare_kubeedge,
            cgo=True,  # edgecore's and cloudcore's SQLite driver is mattn/go-sqlite3
        ),
    )
}

BINARIES: dict[str, ToolSet] = {b: ts for ts in TOOLSETS.values() for b in ts.binaries}


def _resolve(names: Sequence[str]) -> list[ToolSet]:
    """Tool sets for the given set or binary names (all when empty), in a stable order."""
    if not names:
        return list(TOOLSETS.values())
    chosen: list[ToolSet] = []
    for name in names:
        ts = TOOLSETS.get(name) or BINARIES.get(name)
        if ts is None:
            valid = ", ".join(sorted({*TOOLSETS, *BINARIES}))
            raise UsageError(f"unknown tool {name!r}; valid names: {valid}")
        if ts not in chosen:
            chosen.append(ts)
    return chosen


def tool_path(binary: str) -> Path:
    """Path of an installed binary; :class:`ToolError` saying how to install it if missing."""
    ts = BINARIES.get(binary)
    if ts is None:
        raise UsageError(f"unknown binary {binary!r}; known: {', '.join(sorted(BINARIES))}")
    path = ts.path(binary)
    if not path.is_file():
        raise ToolError(
            f"{binary} {ts.version} is not installed (looked in {path.parent}); "
            f"build it with: edgebench tools install {ts.name}"
        )
    return path


def tool_versions(binaries: Sequence[str] | None = None) -> dict[str, str]:
    """The pinned version of each installed binary, for ``run.json``."""
    names = binaries if binaries is not None else sorted(BINARIES)
    return {b: BINARIES[b].version for b in names if BINARIES[b].path(b).is_file()}


# --- building -------------------------------------------------------------------------------


def go_binary() -> str:
    """The ``go`` command, checked to exist and be new enough."""
    go = shutil.which("go")
    if go is None:
        raise ToolchainMissingError(
            "the Go toolchain (go >= 1.23) is needed to build edgebench's tools and is not on "
            "PATH; install it (Debian: apt-get install golang-go, or a release from go.dev) "
            "and run `edgebench tools install` again"
        )
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    match = re.match(r"go(\d+)\.(\d+)", out.stdout.strip())
    if not match or (int(match[1]), int(match[2])) < MIN_GO:
        raise ToolchainMissingError(
            f"{go} reports {out.stdout.strip() or 'no version'}; edgebench needs Go >= "
            f"{MIN_GO[0]}.{MIN_GO[1]}"
        )
    return go


_NETWORK_HINTS = (
    "dial tcp",
    "no such host",
    "403 Forbidden",
    "404 Not Found",
    "i/o timeout",
    "connection refused",
    "not available",
)


def _go(go: str, args: Sequence[str], cwd: Path, what: str, env: dict[str, str]) -> str:
    proc = subprocess.run([go, *args], cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-12:])
        hint = ""
        if any(h in proc.stderr for h in _NETWORK_HINTS):
            proxy = env.get("GOPROXY") or "the default"
            hint = (
                f"\nhint: the Go module proxy ({proxy}) could not serve a module; check network "
                "access to it (GOPROXY, GONOSUMDB, GOFLAGS) or pre-populate GOMODCACHE"
            )
        raise BuildError(f"{what} failed (`go {' '.join(args)}` in {cwd}):\n{tail}{hint}")
    return proc.stdout


def _write_consumer_module(ts: ToolSet, go: str, env: dict[str, str]) -> Path:
    src = ts.src_dir
    src.mkdir(parents=True, exist_ok=True)
    lines = [
        "// Generated by edgebench: a consumer module that builds pinned published tools.",
        "module edgebench.local/" + ts.name,
        "",
        f"go {ts.go_directive}",
        "",
        f"require {ts.module} {ts.version}",
    ]
    if ts.replaces is not None:
        info = json.loads(
            _go(
                go,
                ["mod", "download", "-json", f"{ts.module}@{ts.version}"],
                src,
                f"downloading {ts.module}@{ts.version}",
                env,
            )
        )
        for mod, ver in ts.replaces(ts, Path(info["GoMod"])).items():
            lines.append(f"replace {mod} => {mod} {ver}")
    (src / "go.mod").write_text("\n".join(lines) + "\n")
    imports = "\n".join(f'\t_ "{pkg}"' for pkg in ts.binaries.values())
    (src / "tools.go").write_text(
        "//go:build tools\n\n// Package tools pins the commands this module builds.\n"
        f"package tools\n\nimport (\n{imports}\n)\n"
    )
    return src


@contextlib.contextmanager
def _lock(ts: ToolSet) -> Iterator[None]:
    lock_dir = edgebench_home() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{ts.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build_with_progress(
    go: str, ts: ToolSet, src: Path, out: Path, env: dict[str, str], log: Callable[[str], None]
) -> None:
    pkgs = list(ts.binaries.values())
    deps = _go(
        go,
        ["list", "-deps", "-f", "{{.ImportPath}}", *pkgs],
        src,
        f"listing packages of {ts.name}",
        env,
    ).split()
    total = len(deps)
    depset = set(deps)
    args = [
        go,
        "build",
        "-v",
        "-trimpath",
        "-ldflags",
        " ".join(("-s", "-w", *ts.ldflags)),
        "-o",
        str(out) + "/",
        *pkgs,
    ]
    compiled = 0
    errors: list[str] = []
    started = time.monotonic()
    last_report = started
    with subprocess.Popen(args, cwd=src, env=env, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip()
            if line in depset:
                compiled += 1
            else:
                errors.append(line)
            now = time.monotonic()
            if now - last_report >= 10:
                last_report = now
                log(
                    f"  {ts.name}: compiled {compiled} packages (of at most {total}), "
                    f"{now - started:.0f}s"
                )
        rc = proc.wait()
    if rc != 0:
        tail = "\n".join(errors[-15:])
        raise BuildError(f"building {ts.name} {ts.version} failed (exit {rc}) in {src}:\n{tail}")


def _go_binary_name(pkg: str) -> str:
    """The file name ``go build -o DIR/`` gives a command (``a/b/v3`` builds ``b``)."""
    parts = pkg.split("/")
    return parts[-2] if re.fullmatch(r"v\d+", parts[-1]) and len(parts) > 1 else parts[-1]


def install(ts: ToolSet, log: Callable[[str], None] = print, force: bool = False) -> bool:
    """Build ``ts`` into the cache unless it is there; True when something was built."""
    if ts.installed() and not force:
        return False
    go = go_binary()
    with _lock(ts):
        if ts.installed() and not force:  # another process built it while we waited
            return False
        env = {
            **os.environ,
            "CGO_ENABLED": "1" if ts.cgo else "0",
            "GOFLAGS": "-mod=mod",
            "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "local"),
        }
        started = time.monotonic()
        log(
            f"building {ts.name} {ts.version} from {ts.module} "
            "(cold builds of large tools take many minutes)"
        )
        if ts.prepare is not None:
            ts.prepare(ts, go, env)
            src = ts.src_dir
        else:
            src = _write_consumer_module(ts, go, env)
        _go(go, ["mod", "tidy"], src, f"resolving the dependencies of {ts.name}", env)
        ts.bin_dir.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=ts.bin_dir.parent, prefix=".build-") as tmp:
            _build_with_progress(go, ts, src, Path(tmp), env, log)
            for binary, pkg in ts.binaries.items():
                built = Path(tmp) / _go_binary_name(pkg)
                if not built.exists():
                    raise BuildError(f"go build produced no binary for {pkg} in {tmp}")
                final_tmp = Path(tmp) / f".{binary}.final"
                shutil.move(built, final_tmp)
                ts.bin_dir.mkdir(parents=True, exist_ok=True)
                os.replace(final_tmp, ts.path(binary))
        manifest = {
            "name": ts.name,
            "version": ts.version,
            "module": ts.module,
            "binaries": sorted(ts.binaries),
            "built_at": time.strftime("%FT%TZ", time.gmtime()),
            "build_seconds": round(time.monotonic() - started, 1),
        }
        (ts.bin_dir.parent / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        log(f"built {ts.name} {ts.version} in {time.monotonic() - started:.0f}s -> {ts.bin_dir}")
    return True


def ensure(binaries: Sequence[str], log: Callable[[str], None] = print) -> dict[str, Path]:
    """Install whatever of ``binaries`` is missing and return their paths."""
    for ts in _resolve(binaries):
        install(ts, log=log)
    return {b: tool_path(b) for b in binaries}


# --- CLI ------------------------------------------------------------------------------------


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cmd_install(args: argparse.Namespace) -> int:
    for ts in _resolve(args.names):
        if not install(ts, log=_stderr, force=args.force):
            _stderr(f"{ts.name} {ts.version}: cached in {ts.bin_dir}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    for ts in TOOLSETS.values():
        for binary in ts.binaries:
            state = "installed" if ts.path(binary).is_file() else "missing"
            print(f"{binary:26} {ts.version:10} {state:10} {ts.path(binary)}")
    return 0


def _cmd_path(args: argparse.Namespace) -> int:
    print(tool_path(args.name))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    tools = subparsers.add_parser("tools", help="build, list and locate the real binaries")
    sub = tools.add_subparsers(dest="tools_command", metavar="ACTION", required=True)
    p = sub.add_parser("install", help="build tools from their Go modules (all when none named)")
    p.add_argument("names", nargs="*", metavar="NAME", help="tool set or binary name")
    p.add_argument("--force", action="store_true", help="rebuild even when cached")
    p.set_defaults(func=_cmd_install)
    p = sub.add_parser("list", help="show each binary, its pinned version and whether it is built")
    p.set_defaults(func=_cmd_list)
    p = sub.add_parser("path", help="print the path of an installed binary")
    p.add_argument("name", metavar="BINARY")
    p.set_defaults(func=_cmd_path)
