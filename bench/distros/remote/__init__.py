"""Existing clusters reached over SSH (``--provider=remote --lab lab.yaml``); docs/labs.md."""
