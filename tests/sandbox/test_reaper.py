"""Leftovers of dead runs are removed; those of live runs are not."""

from __future__ import annotations

import uuid
from pathlib import Path

import docker
import pytest

from engine.sandbox.images import ImageBuilder
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.reaper import RUN_LABEL, RunLock, reap, run_alive
from engine.sandbox.runner import Sandbox

pytestmark = pytest.mark.docker


def _leftover(client: docker.DockerClient, image: str, run_id: str) -> docker.models.containers.Container:
    return client.containers.create(image, ["true"], labels={RUN_LABEL: run_id}, network_mode="none")


def _exists(client: docker.DockerClient, container_id: str) -> bool:
    return bool(client.containers.list(all=True, filters={"id": container_id}))


def test_containers_of_a_dead_run_are_removed_and_of_a_live_run_kept(
        docker_client: docker.DockerClient, base_image: str, tmp_path: Path) -> None:
    alive_id, dead_id = f"test-alive-{uuid.uuid4().hex[:8]}", f"test-dead-{uuid.uuid4().hex[:8]}"
    lock = RunLock(alive_id)
    alive = _leftover(docker_client, base_image, alive_id)
    dead = _leftover(docker_client, base_image, dead_id)
    try:
        assert run_alive(alive_id) and not run_alive(dead_id)
        reap(docker_client)
        assert _exists(docker_client, alive.id) and not _exists(docker_client, dead.id)
        lock.release()
        reap(docker_client)
        assert not _exists(docker_client, alive.id)
    finally:
        lock.release()
        for c in (alive, dead):
            if _exists(docker_client, c.id):
                c.remove(force=True)


def test_candidate_images_of_a_dead_run_are_removed(docker_client: docker.DockerClient, base_image: str,
                                                    image_builder: ImageBuilder) -> None:
    run_id = f"test-dead-img-{uuid.uuid4().hex[:8]}"
    with Sandbox(run_id, client=docker_client) as box:
        tag = image_builder.layer(base_image, {"c.py": run_id.encode()}, kind="test-candidate",
                                  labels={RUN_LABEL: run_id})
        assert box.run(tag, ["python3", "-c", "pass"], limits=SandboxLimits(timeout_s=20)).ok
        reap(docker_client)
        assert image_builder.exists(tag)  # the run is alive
    assert not image_builder.exists(tag)  # close() reaps the run that just ended


def test_gc_command_reports_what_it_removed(docker_client: docker.DockerClient, base_image: str) -> None:
    from typer.testing import CliRunner

    from engine.sandbox.cli import sandbox_app

    leftover = _leftover(docker_client, base_image, f"test-gc-{uuid.uuid4().hex[:8]}")
    result = CliRunner().invoke(sandbox_app, ["gc"])
    assert result.exit_code == 0 and "removed" in result.output
    assert not _exists(docker_client, leftover.id)
