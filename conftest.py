"""Root conftest: loads edgebench's pytest glue from ``fixtures/`` (not an installed package,
so it never clashes with the ``fixtures`` distribution on PyPI)."""

pytest_plugins = [
    "fixtures.options",
    "fixtures.results",
    "fixtures.faults",
    "fixtures.cluster",
    "fixtures.scenario",
    "fixtures.capabilities",
    "fixtures.compare",
]
