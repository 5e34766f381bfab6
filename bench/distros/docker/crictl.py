"""Edge views of nodes with a real runtime in a container: the pod sandboxes its CRI runtime
holds (``crictl pods``), read through a ``docker://`` host."""

from __future__ import annotations

import json

from bench.hosts import Host


def pods_view(out: str) -> dict[str, str]:
    """``crictl pods -o json`` output as pod ``ns/name`` to ``Running`` or ``NotReady``."""
    view = {}
    for item in json.loads(out).get("items") or []:
        meta = item.get("metadata", {})
        state = item.get("state", "")
        view[f"{meta.get('namespace')}/{meta.get('name')}"] = (
            "Running" if state == "SANDBOX_READY" else "NotReady"
        )
    return view


def edge_pods(container: str, crictl: str = "crictl") -> dict[str, str]:
    """The pod sandboxes of the runtime in ``container`` (``crictl`` is how to call it)."""
    return pods_view(Host(f"docker://{container}").check(f"{crictl} pods -o json").stdout)
