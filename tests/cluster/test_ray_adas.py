"""`evobox search adas --executor ray --address ...` on the local cluster: the agents run on a
worker and reach the LLM through the node's relay to the head's gateway; the API key is never
in a worker's environment, command lines or files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.llm.scripted import ScriptedLLM
from engine.search.archive import load_records
from engine.search.candidate import Status
from tests.cluster.conftest import W1, WORKERS
from engine.cluster.local import REPO, LocalCluster

pytestmark = [pytest.mark.docker, pytest.mark.slow]
KEY = "sk-cluster-" + "k3y" * 8
MARKER = "SCRIPTED-AGENT"
AGENT = f'''def forward(self, taskInfo):
    agent = LLMAgentBase(['thinking', 'answer'], 'Careful Agent')
    thinking, answer = agent([taskInfo], '{MARKER}: solve the problem step by step.')
    return answer
'''
CONFIG = f"""
[search]
generations = 1
reflection_rounds = 0
repair_rounds = 0
eval_slots = 2

[domain]
baselines = ["cot"]
n_questions = 4
threads = 2
cpus = 0.5
bootstrap_resamples = 200

[domain.final_test]
enabled = false

[executor]
num_cpus = 0.25
memory_bytes = 67108864
resources = {{ {W1} = 0.1 }}
"""


def scripted(body: dict[str, Any]) -> str:
    system = body["messages"][0]["content"]
    if "keys:\n" not in system:
        return json.dumps({"thought": "one careful call", "name": "Careful Agent", "code": AGENT})
    fields = json.loads(system.split("keys:\n", 1)[1].split("\nDo not add", 1)[0])
    asked = " ".join(m["content"] for m in body["messages"] if m["role"] == "user")
    first, second = map(int, re.findall(r"What is (\d+) plus (\d+)\?", asked)[-1])
    return json.dumps({name: str(first + second) if name == "answer" else f"some {name}" for name in fields})


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="rayadas-", dir="/tmp"))  # short: unix socket paths are capped
    data = path / "data" / "mgsm"
    data.mkdir(parents=True)
    (data / "mgsm_en.tsv").write_text("".join(f"What is {i} plus {i + 3}?\t{2 * i + 3}\n" for i in range(160)))
    (path / "run.toml").write_text(CONFIG)
    yield path
    shutil.rmtree(path, ignore_errors=True)


class KeyWatch:
    """Reads every worker process's environment and command line, and the node agents' files,
    over and over while the run lasts."""

    def __init__(self, cluster: LocalCluster):
        self.cluster = cluster
        self.leaks: list[str] = []
        self.agents_seen = 0
        self.files_seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch)

    def __enter__(self) -> KeyWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for name in WORKERS:
                for pid in self.cluster.pids(name):
                    self._process(pid)

    def _process(self, pid: int) -> None:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return
        if b"NodeAgent" in cmdline:
            self.agents_seen += 1
            self._files()
        for what, data in (("cmdline", cmdline), ("environ", environ)):
            if KEY.encode() in data:
                self.leaks.append(f"{what} of pid {pid}")

    def _files(self) -> None:
        for workdir in Path("/tmp").glob("evobox-node-*"):
            for dirpath, _, filenames in os.walk(workdir):  # files come and go while it walks
                for name in filenames:
                    path = Path(dirpath) / name
                    try:
                        if path.is_file() and not path.is_symlink():
                            self.files_seen += 1
                            if KEY.encode() in path.read_bytes():
                                self.leaks.append(f"file {path}")
                    except OSError:
                        continue


def test_adas_search_on_a_worker_keeps_the_key_on_the_head(ray_cluster: LocalCluster, workdir: Path):
    run_dir = workdir / "rayadas"  # the run id: not a name another test on the machine locks
    env = {**{k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")},
           **ray_cluster.client_env(), "EVOBOX_CACHE_DIR": str(workdir / "cache"),
           "EVOBOX_DATA_DIR": str(workdir / "data"), "OPENAI_API_KEY": KEY}
    with ScriptedLLM(default=scripted) as llm, KeyWatch(ray_cluster) as watch:
        env["OPENAI_BASE_URL"] = llm.base_url
        result = subprocess.run(
            [sys.executable, "-c", "from engine.cli import app; app()", "search", "adas", "--config",
             str(workdir / "run.toml"), "--model", "m", "--run-dir", str(run_dir), "--executor", "ray",
             "--address", ray_cluster.address, "--no-progress"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    records = load_records(run_dir)
    assert [(r.name, r.status) for r in records] == [("Chain-of-Thought", Status.OK), ("Careful Agent", Status.OK)]
    assert records[1].fitness == pytest.approx(100.0)  # its answers came through the relay
    assert records[1].agent_usage.calls >= 4  # charged on the head's gateway
    assert (run_dir / "candidates" / records[1].attempts[-1].code_id / "llm_transcript.jsonl").stat().st_size > 0
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    placed = {e["node"] for e in events if e.get("event") == "cluster.placed"}
    assert placed == {ray_cluster.node_ids()[W1][:12]}
    assert watch.agents_seen and watch.files_seen, "the watch never saw a node agent or its files"
    assert not watch.leaks, watch.leaks
    for log in (ray_cluster.root / "ray").rglob("*"):  # every node's Ray logs (one machine: one temp dir)
        if log.is_file() and not log.is_socket():
            assert KEY.encode() not in log.read_bytes(), log
