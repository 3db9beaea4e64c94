"""One way to reach the Docker engine, failing with a typed error instead of a stack of HTTP noise."""

from __future__ import annotations

import docker
import docker.errors

from engine.sandbox.errors import SandboxError


def connect(client: docker.DockerClient | None = None) -> docker.DockerClient:
    """Return `client`, or a client from the environment (DOCKER_HOST), checked with a ping."""
    if client is not None:
        return client
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        raise SandboxError(f"Docker engine unreachable ({exc}); start dockerd (make host)") from exc
    return client
