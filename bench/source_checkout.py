"""``edgebench_fixtures`` importable from a source checkout that is not installed.

An installed edgebench maps the repository's ``fixtures/`` folder to the import name
``edgebench_fixtures`` (setuptools ``package-dir``). Run from a checkout with only
``PYTHONPATH`` set, importing this module gives the same name to the checkout's folder, before
any other (older) installed copy: ``pytest -p bench.source_checkout -p edgebench_fixtures.x``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PACKAGE = "edgebench_fixtures"


def use_source_checkout() -> None:
    """Alias ``edgebench_fixtures`` to ``<checkout>/fixtures`` when this ``bench`` package is
    in a checkout (``fixtures/`` next to it under a ``pyproject.toml``); else do nothing."""
    if PACKAGE in sys.modules:
        return
    root = Path(__file__).resolve().parent.parent
    folder = root / "fixtures"
    if not ((root / "pyproject.toml").is_file() and (folder / "options.py").is_file()):
        return
    spec = importlib.util.spec_from_file_location(
        PACKAGE, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)


use_source_checkout()
