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
import pytest

from engine.sandbox.client import connect
from engine.sandbox.engine import Engine, describe
from engine.sandbox.errors import SandboxError
from engine.sandbox.images import ImageBuilder
from engine.sandbox.runner import Sandbox


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    """A client of the engine evobox would use (DOCKER_HOST, your rootless engine, the root engine);
    the test fails when it is unreachable."""
    try:
        return connect()
    except SandboxError as exc:
        pytest.fail(f"{exc}; or deselect these tests with -m \"not docker\"", pytrace=False)


@pytest.fixture(scope="session")
def engine_info(docker_client: docker.DockerClient) -> Engine:
    """What the engine under test is (root or rootless, cgroup limits or rlimits)."""
    return describe(docker_client)


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
