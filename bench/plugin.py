"""edgebench's pytest plugin, registered through the ``pytest11`` entry point.

After ``pip install edgebench``, ``pytest --distro=kubeedge my_tests/`` works anywhere, and
tests can use the fixtures (``cluster``, ``observer``, ``scenario_run``, ``toxiproxy``, ...).
The fixture modules live in the repository's ``fixtures/`` folder, installed under the
import name ``edgebench_fixtures`` (not ``fixtures``, an unrelated PyPI package). Disable the
plugin with ``-p no:edgebench``.
"""

from __future__ import annotations

import bench.source_checkout  # noqa: F401  (edgebench_fixtures in a source checkout)

pytest_plugins = [
    "edgebench_fixtures.options",
    "edgebench_fixtures.results",
    "edgebench_fixtures.faults",
    "edgebench_fixtures.cluster",
    "edgebench_fixtures.scenario",
    "edgebench_fixtures.capabilities",
    "edgebench_fixtures.compare",
]
