"""Shared fixtures: the real Docker engine and the images built on it (never mocked).

An unreachable engine FAILS every test that needs it, never skips it: a suite whose sandbox
and hostile-code tests silently skip proves nothing. `make test` and CI start dockerd first; on a
machine without Docker, deselect those tests explicitly with `-m "not docker"`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from engine.sandbox.images import ImageBuilder
from engine.sandbox.runner import Sandbox


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    """A client of the real engine; the test fails when dockerd is unreachable."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"Docker engine unreachable ({exc}): run `make host` to start dockerd, "
                    'or deselect these tests with -m "not docker"', pytrace=False)
    return client


@pytest.fixture(scope="session")
def image_builder(docker_client: docker.DockerClient) -> ImageBuilder:
    return ImageBuilder(docker_client)


@pytest.fixture(scope="session")
def base_image(image_builder: ImageBuilder) -> str:
    """The evobox base image tag (built with mmdebstrap the first time, ~30 s)."""
    return image_builder.base()


@pytest.fixture()
def sandbox(request: pytest.FixtureRequest, docker_client: docker.DockerClient) -> Iterator[Sandbox]:
    """A Sandbox with a run id unique to this test; closed (and its leftovers reaped) afterwards."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:60]
    with Sandbox(f"test-{name}-{uuid.uuid4().hex[:8]}", client=docker_client) as box:
        yield box
