"""Access to the Docker engine through the Docker SDK for Python, with errors that say what
to supply, and the one place a :class:`~bench.distros.docker.spec.ContainerSpec` becomes a
running container (trying each security mode in order)."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bench.distros.docker.spec import SECURITY_MODES, ContainerSpec, Security, refused
from bench.errors import ClusterError, EnvironmentUnavailableError

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container


def connect() -> docker.DockerClient:
    """A client of the engine ``DOCKER_HOST`` (or the local socket) names, checked to answer;
    :class:`EnvironmentUnavailableError` saying what is missing otherwise."""
    try:
        import docker
    except ImportError:
        raise EnvironmentUnavailableError(
            "the docker provider needs the Docker SDK for Python: pip install docker"
        ) from None
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if host.startswith("unix://"):
        _probe_socket(host.removeprefix("unix://"))
    client = None
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        if client is not None:
            client.close()
        text = str(exc)
        if "PermissionError" in text or "Permission denied" in text:
            raise EnvironmentUnavailableError(
                f"no permission to use the Docker engine ({text}); run as a member of the "
                "docker group (or root), or point DOCKER_HOST at an engine you may use"
            ) from None
        raise EnvironmentUnavailableError(
            f"no Docker engine answers ({text}); install Docker and start it (e.g. "
            "apt-get install docker.io && dockerd &), or set DOCKER_HOST"
        ) from None
    return client


def _probe_socket(path: str) -> None:
    """Say what is wrong with the engine's socket before the SDK tries it (a failed attempt
    of the SDK leaks its socket)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except PermissionError:
        raise EnvironmentUnavailableError(
            f"no permission to use the Docker engine at {path}; run as a member of the "
            "docker group (or root), or point DOCKER_HOST at an engine you may use"
        ) from None
    except OSError as exc:
        raise EnvironmentUnavailableError(
            f"no Docker engine answers at {path} ({exc.strerror}); install Docker and start "
            "it (e.g. apt-get install docker.io && dockerd &), or set DOCKER_HOST"
        ) from None
    finally:
        sock.close()


def require_image(client: docker.DockerClient, image: str, how: str) -> None:
    """:class:`EnvironmentUnavailableError` ending in ``how`` when ``image`` is not present."""
    import docker

    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound as exc:
        if exc.response is not None:  # its connection, else held until garbage collection
            exc.response.close()
    raise EnvironmentUnavailableError(f"image {image} is not present; {how}")


def run(
    client: docker.DockerClient, spec: ContainerSpec, modes: Sequence[Security] = SECURITY_MODES
) -> tuple[Container, Security]:
    """Create and start ``spec`` on its network at its address, in the first security mode
    the engine grants; the container and the mode used."""
    import docker

    errors: list[str] = []
    for mode in modes:
        kwargs: dict[str, Any] = spec.run_kwargs(mode)
        endpoint = client.api.create_endpoint_config(ipv4_address=spec.ip) if spec.ip else None
        kwargs["network"] = spec.network
        if endpoint is not None:
            kwargs["networking_config"] = {spec.network: endpoint}
        container = None
        try:
            container = client.containers.create(**kwargs)
            container.start()
            container.reload()
            return container, mode
        except docker.errors.APIError as exc:
            if container is not None:
                with contextlib.suppress(docker.errors.APIError):
                    container.remove(force=True)
            errors.append(f"{mode.name}: {exc}")
            if not refused(str(exc)):
                break
    raise ClusterError(f"cannot start container {spec.name}: {'; '.join(errors)}")


def init_pid(container: Container) -> int:
    """The host pid of the container's first process (for ``nsenter -t``), read afresh: a
    restarted container has a new one (and a new network namespace)."""
    import docker

    try:
        container.reload()
    except docker.errors.APIError as exc:  # removed, or the engine is gone
        raise ClusterError(f"container {container.name} cannot be inspected: {exc}") from None
    pid = int(container.attrs["State"]["Pid"])
    if pid <= 0:
        raise ClusterError(f"container {container.name} is not running")
    return pid


def address(container: Container, network: str) -> str:
    container.reload()
    return str(container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"])
