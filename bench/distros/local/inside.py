"""HTTP requests made from where an edge node's packets are: inside its network namespace.

Kernel faults act on the node's own side of the link, so a probe of the link, or a read of
the agent's local endpoint (bound to the namespace's loopback), must run in the namespace
too. The request runs in a short Python process started there (the harness's own
interpreter) and prints one JSON line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.errors import ClusterError
from bench.runner import Runner

_FETCH = r"""
import json, ssl, sys, time, urllib.error, urllib.request
url, cafile, cert, key, timeout = sys.argv[1:6]
ctx = None
if url.startswith("https://"):
    ctx = ssl.create_default_context(cafile=cafile or None)
    if not cafile:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
started = time.monotonic()
try:
    with urllib.request.urlopen(url, context=ctx, timeout=float(timeout)) as resp:
        body, status = resp.read(), resp.status
except urllib.error.HTTPError as exc:
    body, status = exc.read(), exc.code
print(json.dumps({"seconds": time.monotonic() - started, "status": status,
                  "body": body.decode("utf-8", "replace")}))
"""


@dataclass(frozen=True)
class Answer:
    seconds: float
    status: int
    body: str


def fetch(
    run: Runner,
    url: str,
    cafile: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    timeout: float = 5.0,
) -> Answer:
    """GET ``url`` through ``run`` (e.g. ``NodeNamespace.run``); an HTTPS URL without
    ``cafile`` is not verified (a timing probe trusts nothing and sends no secrets)."""
    argv = [
        sys.executable,
        "-c",
        _FETCH,
        url,
        str(cafile or ""),
        str(cert or ""),
        str(key or ""),
        str(timeout),
    ]
    result = run(argv)
    if not result.ok:
        raise ClusterError(f"GET {url} from inside the node failed: {result.explain()}")
    data = json.loads(result.out.strip().splitlines()[-1])
    return Answer(float(data["seconds"]), int(data["status"]), str(data["body"]))
