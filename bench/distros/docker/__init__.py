"""The ``docker`` provider: edge nodes (and, for k3s, the whole distribution) in containers on
a Docker engine, every resource labelled with its cluster, run and owner process."""
