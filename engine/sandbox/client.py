"""One way to reach the Docker engine, failing with a typed error instead of a stack of HTTP noise."""

from __future__ import annotations

import docker
import docker.errors

from engine.sandbox.engine import client_for, find_url
from engine.sandbox.errors import SandboxError


def connect(client: docker.DockerClient | None = None) -> docker.DockerClient:
    """Return `client`, or a client of the engine `engine.find_url` finds (DOCKER_HOST, the user's
    rootless socket, the root socket), checked with a ping. `client.evobox_source` says which."""
    if client is not None:
        return client
    url, source = find_url()
    try:
        client = client_for(url, source, timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        raise SandboxError(f"Docker engine unreachable at {url} (from {source}): {exc}; start one "
                           "(make rootless for your own engine, make host for the root engine)") from exc
    client.evobox_source = source  # type: ignore[attr-defined]
    return client
