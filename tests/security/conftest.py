"""The battery's harness: one sandbox per module, and after every hostile case three checks:
the host is unchanged, the engine still runs a trivial candidate, and no container is left."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from engine.sandbox.limits import SandboxLimits
from engine.sandbox.reaper import RUN_LABEL
from engine.sandbox.runner import Sandbox

HOSTILE = SandboxLimits(timeout_s=5, memory_bytes="256m", pids=64, tmp_bytes="16m", shm_bytes="16m",
                        fsize_bytes="4m", out_max_bytes="8m", out_max_files=200, log_tail_bytes=16 * 1024)
HOST_FILES = [Path("/etc/passwd"), Path("/etc/hostname"), Path("/etc/resolv.conf")]


@pytest.fixture(scope="module")
def box(docker_client: docker.DockerClient) -> Iterator[Sandbox]:
    with Sandbox(f"test-security-{uuid.uuid4().hex[:8]}", client=docker_client) as sandbox:
        yield sandbox


@pytest.fixture()
def in_dir(tmp_path: Path) -> Path:
    """Read-only inputs with a canary the hostile code will try to change."""
    path = tmp_path / "in"
    path.mkdir()
    (path / "canary.txt").write_text("do not touch")
    return path


@pytest.fixture()
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "out"


def _fingerprint(paths: list[Path]) -> dict[str, str]:
    found = {}
    for root in paths:
        for path in sorted([root, *root.rglob("*")] if root.is_dir() else [root]):
            if path.is_file() and not path.is_symlink():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(autouse=True)
def contained(box: Sandbox, base_image: str, in_dir: Path, docker_client: docker.DockerClient) -> Iterator[None]:
    before = _fingerprint([in_dir, *HOST_FILES])
    yield
    assert _fingerprint([in_dir, *HOST_FILES]) == before, "the host changed"
    left = docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={box.run_id}"})
    assert not left, f"containers left behind: {[c.name for c in left]}"
    trivial = box.run(base_image, ["python3", "-c", "print('still fine')"], limits=HOSTILE)
    assert trivial.ok and trivial.stdout_tail == "still fine\n", trivial.failure_reason()
