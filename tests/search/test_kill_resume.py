"""SIGKILL at every stage of a candidate, for both real domains, then `evobox resume`: the archive
is complete, no candidate is lost or archived twice, and no container is left.

One run per domain, with one generated candidate; the real `evobox` process is killed with
SIGKILL at each stage in turn (propose, build, then each container stage), resumed every time,
until a last resume finishes the run. Stages are detected as a user would see them: the meta-LLM
request arriving (propose), the `candidate.stage` event in events.jsonl (build), a running
container with the stage label (selftest, evaluate, train, score). The meta and agent LLM are a
scripted server; containers, images, gateway and training are real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from engine.domains.adas.baselines import COT
from engine.domains.discopop.baselines import DPO
from engine.llm.scripted import ScriptedLLM
from engine.sandbox.naming import RUN_LABEL, STAGE_LABEL, Stage
from engine.sandbox.owner import PID_LABEL
from engine.search.archive import load_records
from engine.search.candidate import Status
from tests.adas.test_docker import QUESTIONS, reply_by_fields
from tests.search.conftest import proposal

pytestmark = [pytest.mark.docker, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
PROPOSE = "propose"
BUILD = "build"

# The kill points of each domain's candidate, in the order they happen.
CHAINS: dict[str, list[str]] = {
    "adas": [PROPOSE, BUILD, Stage.SELFTEST.value, Stage.EVALUATE.value],
    "discopop": [PROPOSE, BUILD, Stage.TRAIN.value, Stage.SCORE.value],
}
AGENT = COT.replace("'Please think step by step and then solve the task.'", "'Think, then solve the task.'")
LOSS = DPO.replace("self.beta * rho", "self.beta * rho * 1.5")

_RUN = """
[search]
generations = 1
candidates_per_generation = 1
eval_slots = 1
reflection_rounds = 0
repair_rounds = 0
[llm.meta]
base_url = "{url}"
model = "scripted"
temperature = 0.0
max_tokens = 2048
max_retries = 0
"""
_ADAS = """
[llm.agent]
base_url = "{url}"
model = "scripted"
temperature = 0.0
max_tokens = 256
max_retries = 0
[domain]
source = "{data}"
n_questions = 0
baselines = ["cot"]
threads = 2
question_timeout_s = 30
cpus = 0.5
bootstrap_resamples = 200
selftest_timeout_s = 10
"""
# The small proxy settings of tests/discopop (the reference artifact is shared through the cache).
_DISCOPOP = """
[domain]
betas = [1.0]
seeds = [0]
[domain.training]
max_pairs = 128
"""


class Script:
    """The scripted LLM's replies; on the meta request it is told to, it SIGKILLs the run first
    (the request is in flight: the process dies while proposing)."""

    def __init__(self, domain: str):
        self.code = AGENT if domain == "adas" else LOSS
        self.kill_on_propose: subprocess.Popen | None = None
        self.killed = threading.Event()

    def __call__(self, body: dict[str, Any]) -> str:
        system = body["messages"][0]["content"]
        if "keys:\n" in system:  # an agent's call through the gateway
            return reply_by_fields(body)
        if self.kill_on_propose is not None:
            process, self.kill_on_propose = self.kill_on_propose, None
            self.killed.set()
            _sigkill(process)
        return proposal(self.code, name="Discovered")


def _sigkill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def _cli(*args: str, cache: Path | None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    if cache is not None:
        env["EVOBOX_CACHE_DIR"] = str(cache)
    env.pop("OPENAI_BASE_URL", None)
    return subprocess.Popen([sys.executable, "-c", "from engine.cli import app; app()", *args, "--no-progress"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _events(run_dir: Path, offset: int) -> list[dict[str, Any]]:
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    events = []
    for line in path.read_bytes()[offset:].decode(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:  # the line being written
            continue
    return events


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _containers(client: docker.DockerClient, run_id: str, *labels: str) -> list:
    return client.containers.list(all=True, filters={"label": [f"{RUN_LABEL}={run_id}", *labels]}, ignore_removed=True)


def _wait(predicate: Callable[[], bool], process: subprocess.Popen[str], what: str, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if process.poll() is not None and not predicate():
            raise AssertionError(f"evobox ended before {what}:\n{process.stdout.read()}")  # type: ignore[union-attr]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _kill_at(stage: str, process: subprocess.Popen[str], script: Script, run_dir: Path, offset: int,
             client: docker.DockerClient) -> None:
    """SIGKILL `process` once its candidate reaches `stage`."""
    if stage == PROPOSE:
        script.killed.clear()
        script.kill_on_propose = process
        _wait(script.killed.is_set, process, "the proposal request")
        process.wait()
        return
    if stage == BUILD:
        _wait(lambda: any(e.get("event") == "candidate.stage" and e.get("stage") == BUILD
                          for e in _events(run_dir, offset)), process, "the build stage")
    else:
        _wait(lambda: any(c.status == "running" for c in _containers(client, run_dir.name, f"{STAGE_LABEL}={stage}")),
              process, f"a running {stage} container")
    _sigkill(process)


def _config(tmp_path: Path, domain: str, url: str) -> Path:
    text = _RUN.format(url=url)
    if domain == "adas":
        data = tmp_path / "mgsm"
        data.mkdir()
        (data / "mgsm_en.tsv").write_text("".join(f"{q}\t{a}\n" for q, a in QUESTIONS), encoding="utf-8")
        text += _ADAS.format(url=url, data=data)
    else:
        text += _DISCOPOP
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("domain", sorted(CHAINS))
def test_sigkill_at_every_stage_then_resume_gives_a_complete_archive_and_no_container(
        domain: str, docker_client: docker.DockerClient) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"kill-{domain[:2]}-", dir="/tmp"))  # short: the gateway's socket path
    run_dir = work / f"{domain}-kill-{uuid.uuid4().hex[:8]}"
    cache = work / "cache" if domain == "adas" else None  # DiscoPOP shares the built reference artifact
    script = Script(domain)
    with ScriptedLLM(default=script) as llm:
        config = _config(work, domain, llm.base_url)
        process = _cli("search", domain, "--config", str(config), "--run-dir", str(run_dir), cache=cache)
        offset = 0
        for stage in CHAINS[domain]:
            _kill_at(stage, process, script, run_dir, offset, docker_client)
            dead = process.pid
            if stage not in (PROPOSE, BUILD):
                assert _containers(docker_client, run_dir.name, f"{PID_LABEL}={dead}"), \
                    f"SIGKILL at {stage} leaves the process's container behind"
            offset = _size(run_dir / "events.jsonl")
            process = _cli("resume", str(run_dir), cache=cache)
            # the dead process's containers are gone before the resumed one starts any work
            _wait(lambda: any(e.get("event") == "search.started" for e in _events(run_dir, offset)), process,
                  f"the resume after a kill at {stage}")
            assert _containers(docker_client, run_dir.name, f"{PID_LABEL}={dead}") == [], stage
        output, _ = process.communicate(timeout=900)
        assert process.returncode == 0, output
        assert "stopped: completed" in output
    records = load_records(run_dir)
    assert [r.slot for r in records] == [("initial", i) for i in range(len(records) - 1)] + [(1, 0)]
    discovered = records[-1]
    assert discovered.status is Status.OK and discovered.name == "Discovered", discovered.error
    assert len(discovered.attempts) == 1  # evaluated to one outcome, never refused as its own duplicate
    assert list((run_dir / "pending").iterdir()) == []
    assert _containers(docker_client, run_dir.name) == []
    assert docker_client.images.list(filters={"label": f"{RUN_LABEL}={run_dir.name}"}) == []
