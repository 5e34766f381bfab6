"""Local images of edgebench's own agents, built offline from the Go-built tools.

No registry is needed: the base is a Debian ``minbase`` root filesystem made with
``debootstrap`` and imported with ``docker import`` (the hollow KubeEdge agent is linked
against libc, and ``docker://`` hosts want a shell), and the agents image adds the binaries
from ``$EDGEBENCH_HOME/tools``. Its tag is a digest of the tools' pinned versions, so a new
pin builds a new image and an unchanged one is reused.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bench.build import tools
from bench.errors import EnvironmentUnavailableError, ToolError

if TYPE_CHECKING:
    import docker

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
ROOTFS_IMAGE = f"edgebench/rootfs:{SUITE}-minbase"
AGENTS_REPO = "edgebench/agents"
#: the binaries the agents image carries (the ones installed are taken)
AGENT_BINARIES = ("kubemark", "kwok", "hollowedge")
BIN_DIR = "/usr/local/bin"


def agents_tag(versions: dict[str, str]) -> str:
    """``edgebench/agents:<digest>`` of the binaries and versions it carries."""
    text = ",".join(f"{b}={v}" for b, v in sorted(versions.items()))
    return f"{AGENTS_REPO}:{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def installed_agents() -> dict[str, str]:
    """Pinned version of each agent binary that is installed."""
    return tools.tool_versions(list(AGENT_BINARIES))


def agents_image() -> str:
    """The tag of the agents image for the installed tools (built or not)."""
    return agents_tag(installed_agents())


def _progress(message: str) -> None:
    print(f"edgebench: {message}", file=sys.stderr, flush=True)


def build_rootfs(client: docker.DockerClient) -> str:
    """The imported ``debootstrap --variant=minbase`` root filesystem (built once)."""
    import docker

    try:
        client.images.get(ROOTFS_IMAGE)
        return ROOTFS_IMAGE
    except docker.errors.ImageNotFound:
        pass
    if shutil.which("debootstrap") is None:
        raise EnvironmentUnavailableError(
            "building the base image needs debootstrap: apt-get install debootstrap"
        )
    with tempfile.TemporaryDirectory(prefix="edgebench-rootfs-") as tmp:
        root = Path(tmp) / "root"
        _progress(f"debootstrap --variant=minbase {SUITE} (once; about 20 s)...")
        _check_call(["debootstrap", "--variant=minbase", SUITE, str(root), MIRROR])
        tarball = Path(tmp) / "rootfs.tar"
        _check_call(["tar", "-C", str(root), "-cf", str(tarball), "."])
        with tarball.open("rb") as data:
            client.api.import_image_from_data(
                data.read(), repository=ROOTFS_IMAGE.split(":")[0], tag=ROOTFS_IMAGE.split(":")[1]
            )
    return ROOTFS_IMAGE


def _check_call(argv: Sequence[str]) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True)
    if done.returncode != 0:
        raise ToolError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-800:]}")


def build_agents(client: docker.DockerClient, force: bool = False) -> str:
    """The agents image for the installed tools; built only if its tag is missing."""
    import docker

    versions = installed_agents()
    if not versions:
        raise ToolError(
            f"none of {', '.join(AGENT_BINARIES)} is installed: run edgebench tools install"
        )
    tag = agents_tag(versions)
    if not force:
        try:
            client.images.get(tag)
            _progress(f"{tag} is up to date ({', '.join(sorted(versions))})")
            return tag
        except docker.errors.ImageNotFound:
            pass
    base = build_rootfs(client)
    with tempfile.TemporaryDirectory(prefix="edgebench-image-") as tmp:
        ctx = Path(tmp)
        for binary in versions:
            shutil.copy2(tools.tool_path(binary), ctx / binary)
        copies = "\n".join(f"COPY {b} {BIN_DIR}/{b}" for b in sorted(versions))
        labels = " ".join(f'io.edgebench.tool.{b}="{v}"' for b, v in sorted(versions.items()))
        (ctx / "Dockerfile").write_text(f"FROM {base}\n{copies}\nLABEL {labels}\n")
        _progress(f"building {tag} from {', '.join(sorted(versions))}...")
        client.images.build(path=str(ctx), tag=tag, rm=True, forcerm=True)
    return tag
