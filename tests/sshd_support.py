"""The throw-away sshd that the lab tests reach their "nodes" through."""

from __future__ import annotations

import os

import pytest

from bench.distros.remote.sshd import sshd_binary
from bench.errors import EnvironmentUnavailableError


def require_sshd() -> str:
    """The sshd binary; skip saying why when there is none, fail instead under CI=true."""
    __tracebackhide__ = True
    try:
        return sshd_binary()
    except EnvironmentUnavailableError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
