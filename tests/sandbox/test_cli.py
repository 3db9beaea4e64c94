"""`evobox sandbox exec` prints exactly one JSON report on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest
from typer.testing import CliRunner

from engine.cli.sandbox import sandbox_app
from engine.sandbox.engine import Engine

pytestmark = pytest.mark.docker
KEYS = {"exit_code", "timed_out", "oom_killed", "duration_s", "stdout_tail", "stderr_tail", "out_files"}


def _exec(tmp_path: Path, code: str, *args: str) -> dict:
    script = tmp_path / "cand.py"
    script.write_text(code)
    result = CliRunner().invoke(sandbox_app, ["exec", str(script), *args])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert KEYS <= set(report)
    return report


def test_exec_reports_stdout_and_out_files(tmp_path: Path, base_image: str, docker_client: docker.DockerClient) -> None:
    # a dead run's leftover makes the reaper log an event: it must not reach stdout
    docker_client.containers.create(base_image, ["true"], labels={"evobox.run": "test-cli-dead"}, network_mode="none")
    code = "import os\nprint('hello')\nos.makedirs('/out/d')\nopen('/out/d/r.json', 'w').write('{}')\n"
    report = _exec(tmp_path, code, "--timeout", "20")
    assert report["exit_code"] == 0 and report["stdout_tail"] == "hello\n"
    assert report["out_files"] == [{"name": "d/r.json", "size": 2}]


def test_exec_reports_timeout_and_memory_limits(tmp_path: Path, base_image: str, engine_info: Engine) -> None:
    report = _exec(tmp_path, "while True: pass\n", "--timeout", "1")
    assert report["timed_out"] is True and report["exit_code"] is None
    report = _exec(tmp_path, "x = bytearray(1 << 30)\n", "--memory", "128m", "--timeout", "20")
    if engine_info.cgroup_limits:
        assert report["oom_killed"] is True
    else:  # RLIMIT_DATA refuses the allocation (runner._rlimits)
        assert report["exit_code"] == 1 and "MemoryError" in report["stderr_tail"], report


def test_exec_with_an_unknown_image_fails_cleanly(tmp_path: Path, base_image: str) -> None:
    script = tmp_path / "cand.py"
    script.write_text("pass\n")
    result = CliRunner().invoke(sandbox_app, ["exec", str(script), "--image", "evobox/nope:0"])
    assert result.exit_code == 2 and "never pulled" in result.output and result.stdout == ""
