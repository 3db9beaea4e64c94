"""Leftovers of dead processes are removed; what a live process owns is not, whatever its lock dir.

Liveness comes from owner labels (host, boot, pid namespace, pid, start time) checked against the
process table; the live and killed owners here are real `python` processes running a real
Sandbox, killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import docker
import pytest

from engine.sandbox import owner
from engine.sandbox.images import ImageBuilder
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.naming import STAGE_LABEL, Stage
from engine.sandbox.reaper import RUN_LABEL, RunLock, reap, run_alive
from engine.sandbox.runner import Sandbox

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]

# A run in another process: opens a Sandbox (default lock dir unless given) and keeps one container running.
_OWNER = """
import sys
from pathlib import Path
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.runner import Sandbox
box = Sandbox(sys.argv[1], lock_dir=Path(sys.argv[3]) if len(sys.argv) > 3 else None)
box.run(sys.argv[2], ["python3", "-c", "import time; time.sleep(300)"], limits=SandboxLimits(timeout_s=300))
"""


def _leftover(client: docker.DockerClient, image: str, run_id: str,
              labels: dict[str, str] | None = None) -> docker.models.containers.Container:
    return client.containers.create(image, ["true"], labels={RUN_LABEL: run_id, **(labels or {})},
                                    network_mode="none")


def _exists(client: docker.DockerClient, container_id: str) -> bool:
    return bool(client.containers.list(all=True, filters={"id": container_id}, ignore_removed=True))


def _containers(client: docker.DockerClient, run_id: str) -> list:
    return client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}, ignore_removed=True)


def _start_owner(client: docker.DockerClient, image: str, run_id: str, *extra: str) -> subprocess.Popen:
    """Another evobox process with a running container of `run_id`."""
    process = subprocess.Popen([sys.executable, "-c", _OWNER, run_id, image, *extra], cwd=REPO,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 120
    while not [c for c in _containers(client, run_id) if c.status == "running"]:
        assert process.poll() is None, "the owner process died"
        assert time.monotonic() < deadline, "the owner's container never started"
        time.sleep(0.2)
    return process


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_two_runs_with_different_lock_dirs_leave_each_other_alone(
        docker_client: docker.DockerClient, base_image: str, tmp_path: Path) -> None:
    """A run whose lock is not in our lock dir is alive as long as its process is; once that
    process is killed, our reaper removes its container."""
    other_run = f"test-other-{uuid.uuid4().hex[:8]}"
    process = _start_owner(docker_client, base_image, other_run)  # default lock dir
    try:
        # our run opens (and reaps) with its own lock dir; it starts no container, which the
        # reapers of older evobox versions on a shared machine would take for a dead run's
        with Sandbox(f"test-mine-{uuid.uuid4().hex[:8]}", client=docker_client, lock_dir=tmp_path / "locks"):
            assert not run_alive(other_run, tmp_path / "locks")  # the lock cannot tell from here...
            reap(docker_client, tmp_path / "locks")
            assert [c.status for c in _containers(docker_client, other_run)] == ["running"]  # ...the owner can
            _kill(process)
            reap(docker_client, tmp_path / "locks")
            assert _containers(docker_client, other_run) == []
    finally:
        _kill(process)
        for c in _containers(docker_client, other_run):
            c.remove(force=True)


def test_resumed_run_removes_its_killed_predecessors_containers_on_open(
        docker_client: docker.DockerClient, base_image: str, tmp_path: Path) -> None:
    run_id = f"test-resume-{uuid.uuid4().hex[:8]}"
    process = _start_owner(docker_client, base_image, run_id)
    _kill(process)
    assert _containers(docker_client, run_id), "SIGKILL leaves the container running"
    with Sandbox(run_id, client=docker_client):
        assert _containers(docker_client, run_id) == []  # gone before anything new can start


def test_owner_labels_decide_liveness(docker_client: docker.DockerClient, base_image: str) -> None:
    me = owner.current()
    gone = subprocess.Popen(["true"])
    gone.wait()
    cases = {
        "reused-pid": (replace(me, start=me.start + 1), False),  # same pid, another process
        "gone-pid": (replace(me, pid=gone.pid), False),
        "old-boot": (replace(me, boot="another-boot"), False),
        "other-host": (replace(me, host="elsewhere/0", pid=gone.pid), True),  # not ours to judge
        "other-pidns": (replace(me, pidns="1", pid=gone.pid), True),
        "alive": (me, True),
    }
    runs = {name: f"test-owner-{name}-{uuid.uuid4().hex[:6]}" for name in cases}
    # Every run's lock is held (it also keeps the reapers of older evobox versions on a shared
    # engine away): the verdict is the owner labels' alone, a dead owner's container goes.
    locks = [RunLock(run) for run in runs.values()]
    made = {name: _leftover(docker_client, base_image, runs[name], who.labels()) for name, (who, _) in cases.items()}
    try:
        reap(docker_client)
        assert {name: _exists(docker_client, c.id) for name, c in made.items()} == \
               {name: kept for name, (_, kept) in cases.items()}
    finally:
        for lock in locks:
            lock.release()
        for c in made.values():
            if _exists(docker_client, c.id):
                c.remove(force=True)


def test_unlabelled_leftovers_fall_back_on_the_run_lock(
        docker_client: docker.DockerClient, base_image: str) -> None:
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


def test_names_never_collide_and_labels_say_the_stage(sandbox: Sandbox) -> None:
    work = sandbox.work(Stage.SELFTEST, "cand")
    assert work.container_name() != work.container_name()
    assert work.labels()[STAGE_LABEL] == "selftest" and work.labels()[RUN_LABEL] == sandbox.run_id


def test_candidate_images_of_a_dead_run_are_removed(docker_client: docker.DockerClient, base_image: str,
                                                    image_builder: ImageBuilder) -> None:
    run_id = f"test-dead-img-{uuid.uuid4().hex[:8]}"
    with Sandbox(run_id, client=docker_client) as box:
        tag = image_builder.layer(base_image, {"c.py": run_id.encode()}, kind="test-candidate",
                                  labels=box.work(Stage.BUILD, "c").labels())
        assert box.run(tag, ["python3", "-c", "pass"], limits=SandboxLimits(timeout_s=20)).ok
        reap(docker_client)
        assert image_builder.exists(tag)  # the run is alive
    assert not image_builder.exists(tag)  # close() removes what the run made


def test_gc_command_reports_what_it_removed(docker_client: docker.DockerClient, base_image: str) -> None:
    from typer.testing import CliRunner

    from engine.cli.sandbox import sandbox_app

    leftover = _leftover(docker_client, base_image, f"test-gc-{uuid.uuid4().hex[:8]}")
    result = CliRunner().invoke(sandbox_app, ["gc"])
    assert result.exit_code == 0 and "removed" in result.output
    assert not _exists(docker_client, leftover.id)
