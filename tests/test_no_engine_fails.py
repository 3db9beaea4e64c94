"""With the Docker engine unreachable, a Docker test fails: it is never skipped (a suite that
skips its sandbox and hostile-code tests when dockerd is down would pass while proving nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_a_docker_test_fails_when_the_engine_is_unreachable(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-dockerd.sock", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfs",
         "tests/sandbox/test_reaper.py::test_names_never_collide_and_labels_say_the_stage"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 error" in result.stdout and "skipped" not in result.stdout, result.stdout
    assert "Docker engine unreachable" in result.stdout
