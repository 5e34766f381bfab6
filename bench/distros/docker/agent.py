"""An edge agent running as a container, in the shape of a supervised process (so the local
provider's bring-up, liveness checks and teardown treat it like any agent process)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bench.distros.docker import engine
from bench.distros.docker.spec import ContainerSpec, Security
from bench.errors import ClusterError
from bench.procs import Supervised

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container


class ContainerAgent(Supervised):
    """The container of one edge node; its log is the container's output."""

    def __init__(
        self,
        client: docker.DockerClient,
        spec: ContainerSpec,
        log_path: Path,
        modes: Sequence[Security],
    ) -> None:
        super().__init__(spec.name, list(spec.command), log_path)
        self.client = client
        self.spec = spec
        self.modes = tuple(modes)
        self.container: Container | None = None
        self.security: Security | None = None

    @property
    def pid(self) -> int | None:
        return None  # not a process of ours: the engine owns it; labels find it

    def start(self) -> ContainerAgent:
        self.container, self.security = engine.run(self.client, self.spec, self.modes)
        return self

    @property
    def address(self) -> str:
        return self.spec.ip or engine.address(self._container(), self.spec.network)

    def _container(self) -> Container:
        if self.container is None:
            raise ClusterError(f"container {self.name} was not started")
        return self.container

    def running(self) -> bool:
        if self.container is None:
            return False
        self.container.reload()
        return self.container.status == "running"

    def check_alive(self) -> None:
        __tracebackhide__ = True
        if self.container is not None and not self.running():
            raise ClusterError(
                f"container {self.name} is {self.container.status}; its last lines "
                f"(docker logs {self.name}):\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 15) -> str:
        if self.container is None:
            return "(not started)"
        try:
            return str(self.container.logs(tail=lines).decode(errors="replace"))
        except Exception as exc:  # the container may be gone
            return f"(no log: {exc})"

    def save_log(self) -> None:
        """Write the container's whole output to ``log_path`` (best effort)."""
        if self.container is not None:
            with contextlib.suppress(Exception):
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self.log_path.write_bytes(self.container.logs())

    def restart(self) -> None:
        """Restart the container: every process in it starts again, its files stay (but its
        tmpfs mounts: an entrypoint that waits for a marker there waits again)."""
        self._container().restart(timeout=5)

    def release(self, marker: str) -> None:
        """Create ``marker`` in the container: what its entrypoint waits for to start the
        agent (:data:`bench.distros.docker.cluster.GATE`)."""
        result = self._container().exec_run(["touch", marker])
        if result.exit_code != 0:
            raise ClusterError(
                f"cannot start the agent in {self.name} (touch {marker}): "
                f"{result.output.decode(errors='replace').strip()}"
            )

    def stop(self, grace: float = 5.0) -> None:
        """Remove the container; never raises."""
        if self.container is not None:
            with contextlib.suppress(Exception):
                self.container.remove(force=True, v=True)
