"""edgebench: chaos and resilience benchmarks for edge Kubernetes distributions."""

__version__ = "0.1.0"
