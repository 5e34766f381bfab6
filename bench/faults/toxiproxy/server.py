"""The real toxiproxy-server as a supervised child process, with its API on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import cast

from bench.build import tools
from bench.errors import FaultError
from bench.faults.toxiproxy.api import Api, check_name
from bench.faults.toxiproxy.link import ToxiproxyLink
from bench.procs import Supervised, free_port

log = logging.getLogger(__name__)


def _as_list(value: str | Sequence[str]) -> list[str]:
    """One address or several; anything else is kept whole for validation to reject."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return [cast(str, value)]


class Toxiproxy:
    """A running toxiproxy-server; create with :meth:`start`, use as a context manager."""

    def __init__(
        self, proc: Supervised, port: int, temp_dir: Path | None, stop_timeout: float
    ) -> None:
        assert proc.pid is not None
        self.host = "127.0.0.1"
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = proc.log_path
        self.pid = proc.pid
        self._proc = proc
        self._temp_dir = temp_dir
        self._api = Api(self.url, log_hint=f" (server log: {proc.log_path})")
        self._links: dict[str, ToxiproxyLink] = {}
        # Last resort if the owner forgets stop(): at garbage collection or interpreter exit.
        # A detached server (``edgebench up``) must outlive the interpreter: stop() only.
        self._finalizer: Callable[[], object] = (
            functools.partial(proc.stop, stop_timeout)
            if proc.detached
            else weakref.finalize(self, proc.stop, stop_timeout)
        )

    @classmethod
    def start(
        cls,
        binary: str | Path | None = None,
        log_dir: str | Path | None = None,
        startup_timeout: float = 10.0,
        stop_timeout: float = 5.0,
        detached: bool = False,
    ) -> Toxiproxy:
        """Start toxiproxy-server on a free 127.0.0.1 port and wait until its API answers.

        ``binary`` defaults to the one ``edgebench tools install toxiproxy`` built. The server
        log goes to ``log_dir/toxiproxy-server.log``, or to a temporary directory removed by
        :meth:`stop` (kept when startup fails, so the error can name it). A ``detached``
        server outlives this process (for ``edgebench up``); it is stopped by :meth:`stop` or
        by pid, never when the interpreter exits.
        """
        exe = Path(binary) if binary is not None else tools.tool_path("toxiproxy-server")
        temp_dir = None if log_dir else Path(tempfile.mkdtemp(prefix="edgebench-toxiproxy-"))
        directory = Path(log_dir) if log_dir else temp_dir
        assert directory is not None
        directory.mkdir(parents=True, exist_ok=True)
        log_path = directory / "toxiproxy-server.log"
        for attempt in range(3):  # the free port may be taken before the server binds it
            port = free_port()
            proc = Supervised(
                "toxiproxy-server",
                [exe, "-host", "127.0.0.1", "-port", str(port)],
                log_path,
                detached=detached,
            ).start()
            server = cls(proc, port, temp_dir, stop_timeout)
            try:
                server._wait_ready(startup_timeout)
            except BaseException as e:
                proc.stop(stop_timeout)
                if isinstance(e, FaultError) and "address already in use" in str(e) and attempt < 2:
                    continue
                raise
            log.info("toxiproxy-server pid %d API %s log %s", proc.pid, server.url, log_path)
            return server
        raise AssertionError("unreachable")

    def _wait_ready(self, timeout: float) -> None:
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        while True:
            code = self._proc.proc.poll() if self._proc.proc else None
            if code is not None:
                raise FaultError(
                    f"toxiproxy-server exited with status {code} during startup; "
                    f"log {self.log_path}:\n{self._log_tail()}"
                )
            with contextlib.suppress(FaultError):
                if self._api.call("GET", "/version"):
                    return
            if time.monotonic() > deadline:
                raise FaultError(
                    f"toxiproxy-server API {self.url} did not answer within {timeout:.0f}s; "
                    f"log {self.log_path}:\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"(cannot read: {e})"

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its temporary log directory."""
        try:
            self._finalizer()  # stops the process (once, for the attached finalizer)
        finally:
            self._api.close()
            self._links.clear()
            if self._temp_dir is not None:
                shutil.rmtree(self._temp_dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._proc.running()

    def __enter__(self) -> Toxiproxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def version(self) -> str:
        return str(self._api.call("GET", "/version")["version"])

    # --- links -----------------------------------------------------------------------------

    def link(
        self,
        name: str,
        upstream: str | Sequence[str],
        listen: str | Sequence[str] = "127.0.0.1:0",
        check_upstream: bool = False,
    ) -> ToxiproxyLink:
        """A new link with one proxy per upstream; ``listen`` port 0 picks a free port.

        An upstream that is not reachable now is logged as a warning (clients of the proxy will
        see their connections accepted and closed at once), or is an error with
        ``check_upstream=True``.
        """
        check_name(name)
        if name in self._links:
            raise FaultError(f"a link named {name!r} already exists: {self._links[name]!r}")
        upstreams = _as_list(upstream)
        listens = [listen] * len(upstreams) if isinstance(listen, str) else _as_list(listen)
        if not upstreams or len(listens) != len(upstreams):
            raise FaultError(f"link {name}: give one listen address per upstream (or one for all)")
        link = ToxiproxyLink(self._api, name)
        try:
            for up, lis in zip(upstreams, listens, strict=True):
                link.add(up, lis, check_upstream=check_upstream)
        except BaseException:
            with contextlib.suppress(Exception):
                link.delete()
            raise
        self._links[name] = link
        return link

    @property
    def links(self) -> dict[str, ToxiproxyLink]:
        return dict(self._links)

    def remove_link(self, name: str) -> None:
        """Delete a link's proxies from the server."""
        link = self._links.pop(name, None)
        if link is not None:
            link.delete()

    def reset(self) -> None:
        """Restore every link: stop flaps, remove all toxics, re-enable all proxies."""
        for link in self._links.values():
            link._forget_state()
        self._api.call("POST", "/reset")
