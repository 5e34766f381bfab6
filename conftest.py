"""Source-checkout shim: load edgebench's pytest plugin when it is not installed (an
installed edgebench registers ``bench.plugin`` through its ``pytest11`` entry point)."""

import sys

pytest_plugins = [] if "bench.plugin" in sys.modules else ["bench.plugin"]
