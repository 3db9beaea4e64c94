"""The Ray executor on a real local cluster (head + two workers, real Docker): evaluations spread
over the nodes, a GPU request lands only on the node that has one, the archive is the same as
with the local executor, and a worker killed mid-evaluation loses nothing."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from engine.cluster import open_ray
from engine.config import RunConfig, build_config
from engine.llm.scripted import ScriptedLLM
from engine.search.archive import Record, load_records
from engine.search.candidate import Status
from engine.search.runner import run_search
from engine.search.stop import Stopper, StopReason
from tests.cluster.conftest import HEAD, W1, W2
from tests.search.conftest import square
from engine.cluster.local import LocalCluster
from tests.third_domain.domain import ToyDomain

pytestmark = [pytest.mark.docker, pytest.mark.slow]
TOY = "tests.third_domain.domain:ToyDomain"


def proposing(body: dict[str, Any]) -> str:
    """A distinct perfect candidate per candidate (by the request's seed: the same in every run)."""
    tag = str(body["seed"])
    return json.dumps({"thought": "square it", "name": f"Square {tag}", "code": square(tag)})


def toy_config(base_url: str, *, executor: dict[str, Any], candidates: int = 3, generations: int = 1,
               delay_s: float = 0.0) -> RunConfig:
    return build_config({
        "search": {"generations": generations, "candidates_per_generation": candidates, "reflection_rounds": 0,
                   "eval_slots": 3},
        "llm": {"meta": {"base_url": base_url, "model": "scripted", "temperature": 0.0, "max_tokens": 256,
                         "max_retries": 0}},
        "sandbox": {"cpus": 0.5, "memory_bytes": "256m", "timeout_s": 60},
        "executor": executor,
        "domain": {"mode": "sandbox", "eval_delay_s": delay_s},
    })


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Baseline scores are cached per cache dir: each run here evaluates its baselines itself."""
    monkeypatch.setenv("EVOBOX_CACHE_DIR", str(tmp_path / "cache"))


def search(run_dir: Path, config: RunConfig) -> tuple[StopReason, list[Record], list[dict[str, Any]]]:
    os.environ["EVOBOX_CACHE_DIR"] = str(run_dir.parent / f"cache-{run_dir.name}")  # reset by _own_cache
    with capture_logs() as events:
        outcome = run_search(TOY, ToyDomain, config, run_dir, stopper=Stopper(), remote=open_ray, write_report=False)
    return outcome.reason, load_records(run_dir), events


def unique(tmp_path: Path, name: str) -> Path:
    """A run dir whose name (the run id, and the lock's name in the machine-wide lock dir) no
    other test process on the machine uses."""
    return tmp_path / f"{name}-{uuid.uuid4().hex[:8]}"


def placed(events: list[dict[str, Any]]) -> list[str]:
    return [e["node"] for e in events if e["event"] == "cluster.placed"]


def shape(records: list[Record]) -> list[tuple]:
    return [(r.generation, r.index, r.id, r.name, r.code, r.status, r.fitness, r.fitness_text, r.error)
            for r in records]


def ray_executor(cluster: LocalCluster, **extra: Any) -> dict[str, Any]:
    return {"kind": "ray", "address": cluster.address, "num_cpus": 0.5, "memory_bytes": 64 << 20, **extra}


def test_evaluations_spread_over_nodes_and_archive_matches_local(ray_cluster: LocalCluster, tmp_path: Path):
    with ScriptedLLM(default=proposing) as llm:
        local_reason, local, _ = search(unique(tmp_path, "local"), toy_config(llm.base_url, executor={"kind": "local"}))
        reason, remote, events = search(unique(tmp_path, "ray"), toy_config(llm.base_url,
                                                                     executor=ray_executor(ray_cluster, num_cpus=1)))
    assert local_reason is reason is StopReason.COMPLETED
    assert len(remote) == 2 + 3 and all(r.status is Status.OK for r in remote), [r.error for r in remote]
    assert shape(remote) == shape(local)  # same records, same order
    ids = {node[:12]: name for name, node in ray_cluster.node_ids().items()}
    nodes = {ids[node] for node in placed(events)}
    assert len(nodes) >= 2, nodes  # the two baselines run at once, a whole CPU each, on 1-CPU nodes


def test_a_gpu_request_goes_only_to_the_node_with_a_gpu(ray_cluster: LocalCluster, tmp_path: Path):
    with ScriptedLLM(default=proposing) as llm:
        reason, records, events = search(unique(tmp_path, "gpu"), toy_config(
            llm.base_url, executor=ray_executor(ray_cluster, num_gpus=1)))
    assert reason is StopReason.COMPLETED and all(r.status is Status.OK for r in records)
    gpu_node = ray_cluster.node_ids()[W2][:12]
    assert placed(events) and set(placed(events)) == {gpu_node}


def test_a_worker_killed_mid_evaluation_loses_nothing(ray_cluster: LocalCluster, tmp_path: Path):
    """The killed node's candidate goes back to pending and is evaluated on another node; every
    candidate is archived exactly once."""
    ids = {node[:12]: name for name, node in ray_cluster.node_ids().items()}
    victim: list[str] = []

    def kill_first_worker_evaluation(events: list[dict[str, Any]]) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not victim:
            for node in placed(list(events)):
                if ids.get(node) in (W1, W2):
                    time.sleep(1.5)  # the candidate's container is running on it now
                    victim.append(ids[node])
                    ray_cluster.kill(ids[node])
                    return
            time.sleep(0.1)

    run_dir = unique(tmp_path, "kill")
    try:
        with ScriptedLLM(default=proposing) as llm, capture_logs() as events:
            killer = threading.Thread(target=kill_first_worker_evaluation, args=(events,))
            killer.start()
            config = toy_config(llm.base_url, executor=ray_executor(ray_cluster), delay_s=4.0)
            outcome = run_search(TOY, ToyDomain, config, run_dir, stopper=Stopper(), remote=open_ray, write_report=False)
            killer.join()
    finally:
        for name in victim:
            ray_cluster.start(name)  # the session's cluster stays whole for the other tests
    assert victim, "no evaluation was placed on a worker"
    assert outcome.reason is StopReason.COMPLETED, outcome.detail
    records = load_records(run_dir)
    assert [r.slot for r in records] == [("initial", 0), ("initial", 1), (1, 0), (1, 1), (1, 2)]
    assert all(r.status is Status.OK for r in records)
    assert all(len(r.attempts) == 1 for r in records)  # the node's death was not charged to its candidate
    assert any(e["event"] == "cluster.node_lost" for e in events)
    lines = (run_dir / "evaluations.log").read_text().splitlines()
    ended = [line for line in lines if line.startswith("end ")]
    assert len(ended) == len(set(ended)) == len(records)  # each evaluated to its end once (baselines too)
