"""Kubernetes API access for the harness (never through an edge node's link)."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client, config


def api_client(kubeconfig: Path) -> client.ApiClient:
    """An API client for ``kubeconfig`` that does not touch the global default configuration."""
    return config.new_client_from_config(config_file=str(kubeconfig))
