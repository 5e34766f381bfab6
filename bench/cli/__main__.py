"""``python -m bench.cli``: the ``edgebench`` command."""

import sys

from bench.cli import main

sys.exit(main())
