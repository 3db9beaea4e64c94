"""A container ends at its deadline even when the engine that started it is dead (issue 9.6).

The engine is a real process running `Sandbox.run`; it is SIGKILLed once its container runs.
Docker's event stream then says how the container ended: by itself (the init's deadline exit
status), or not at all within the test's bound.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import docker
import pytest

from engine.sandbox import boxinit
from engine.sandbox.engine import Engine
from engine.sandbox.outfs import reap_outfs, staging_root
from engine.sandbox.reaper import RUN_LABEL, reap

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 2
BOUND_S = 90  # far past the init's deadline (TIMEOUT_S + 5 s), for a loaded machine


def engine_script(run_id: str, image: str, out_dir: Path) -> str:
    """The engine. A helper process outlives it and owns what it starts (its run lock, and the
    owner labels of its container and /out), so that no reaper (of this machine's other runs)
    removes the container and the test sees only what the container does."""
    return textwrap.dedent(f"""
        import dataclasses, subprocess
        from pathlib import Path
        from engine.sandbox.limits import SandboxLimits
        from engine.sandbox.owner import process_start
        from engine.sandbox.runner import Sandbox
        with Sandbox({run_id!r}) as box:
            holder = subprocess.Popen(["sleep", "600"], pass_fds=[box._lock._fd])
            box.owner = dataclasses.replace(box.owner, pid=holder.pid, start=process_start(holder.pid))
            print(f"holder={{holder.pid}}", flush=True)
            box.run({image!r}, ["python3", "-c", "import time; time.sleep(600)"],
                    limits=SandboxLimits(timeout_s={TIMEOUT_S}, memory_bytes="128m"), out_dir=Path({str(out_dir)!r}))
    """)


def test_container_ends_at_its_deadline_after_the_engine_is_killed(base_image: str, tmp_path: Path,
                                                                   docker_client: docker.DockerClient,
                                                                   engine_info: Engine) -> None:
    run_id = f"test-deadline-{uuid.uuid4().hex[:8]}"
    since = int(time.time())
    engine = subprocess.Popen([sys.executable, "-c", engine_script(run_id, base_image, tmp_path / "out")],
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    assert engine.stdout is not None
    holder = next(int(line.split("=")[1]) for line in engine.stdout if line.startswith("holder="))
    events = docker_client.events(since=since, until=since + BOUND_S, decode=True,
                                  filters={"type": "container", "label": f"{RUN_LABEL}={run_id}"})
    seen: list[str] = []
    died: dict | None = None
    try:
        for event in events:
            seen.append(event["Action"])
            if event["Action"] == "start":
                engine.kill()  # SIGKILL: no finally, no cleanup, no timeout in the engine any more
                assert engine.wait() == -signal.SIGKILL
            elif event["Action"] == "die":
                died = event["Actor"]["Attributes"]
                break
    finally:
        events.close()
        if engine.poll() is None:
            engine.kill()
        engine.wait()
        os.kill(holder, signal.SIGKILL)  # the run is dead now
        reap(docker_client)
    assert died is not None, f"the container outlived its dead engine (events: {seen})"
    assert "kill" not in seen, f"something other than the deadline killed it (events: {seen})"
    assert died["exitCode"] == str(boxinit.DEADLINE_EXIT)
    assert (staging_root(engine_info) / run_id).is_dir()  # the dead engine's /out is still mounted...
    reap_outfs(engine=engine_info)
    assert not (staging_root(engine_info) / run_id).exists()  # ...until the next engine reaps it
    assert run_id not in Path(f"/proc/{engine_info.ns_pid or 'self'}/mountinfo").read_text()
