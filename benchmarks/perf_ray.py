"""The Ray executor's throughput and overhead: prints figures, asserts nothing.

A fixed scripted workload: `SleepDomain` below, each evaluation one hardened container on the
base image that sleeps `--eval-s` (the work) and writes /out, the meta LLM a scripted server
answering each call after `--llm-s`. The same search (2 baselines + G x C
candidates) runs with the local executor (1 slot, then as many slots as the largest cluster)
and with the Ray executor on a local cluster of 1, 2 and 3 nodes (each node 1 CPU, each
evaluation reserving 1 CPU, so the nodes bound how many evaluations run at once).

Printed: evaluations per minute of each run, and the per-candidate overhead of the Ray executor
(mean time a record spent in its evaluation stages, Ray with 1 node and 1 slot minus local with 1
slot: placement, agent calls, shipping /in and /out, the image lookup on the node).

All nodes here share one machine, its CPUs and one Docker engine: the figures measure the
executor, not a real cluster's network.
Usage: python -m benchmarks.perf_ray [--candidates 9] [--generations 1] [--eval-s 2] [--llm-s 0.5]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import structlog
from pydantic import BaseModel, ConfigDict

from engine.cluster import open_ray
from engine.cluster.local import LocalCluster, NodeSpec
from engine.config import build_config
from engine.llm.scripted import Reply, ScriptedLLM
from engine.sandbox.runner import Stage
from engine.search.archive import load_records
from engine.search.candidate import Evaluation, Proposal
from engine.search.domain import CandidateContext, Domain, RunContext
from engine.search.runner import run_search
from engine.search.stop import Stopper


def square(tag: str = "") -> str:
    """A perfect toy candidate; `tag` makes distinct code (another id) with the same behaviour."""
    return f"def f(x):\n    return x * x{' + 0 * ' + repr(tag) + '.count(chr(0))' if tag else ''}\n"


DOMAIN = "benchmarks.perf_ray:SleepDomain"
LLM_STAGES = ("propose", "reflect", "repair", "queue")  # the rest is the evaluation: check, build ... score


class SleepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    eval_s: float = 2.0


class SleepDomain(Domain):
    """Every evaluation: one container on the base image sleeping `eval_s`, then one /out file."""

    name = "sleep"
    config_model: ClassVar[type[BaseModel]] = SleepConfig
    config: SleepConfig

    def system_prompt(self) -> str:
        return 'Reply with JSON {"thought": ..., "name": ..., "code": ...}.'

    def proposal_prompt(self, archive_text: str) -> str:
        return f"Archive:\n{archive_text}\nWrite f(x)."

    def reflection_prompts(self) -> list[str]:
        return []

    def repair_prompt(self, error: str) -> str:
        return f"Failed: {error}"

    def baselines(self) -> list[Proposal]:
        return [Proposal(name=f"Base {i}", thought="a baseline", code=f"def f(x):\n    return {i}\n") for i in range(2)]

    def check(self, tree: ast.Module) -> None:
        """Anything that parses."""

    def prepare(self, run: RunContext) -> None:
        self.image = run.images.base()

    def evaluate(self, proposal: Proposal, ctx: CandidateContext) -> Evaluation:
        script = f"import time; time.sleep({self.config.eval_s}); open('/out/done', 'w').write('ok')"
        result = ctx.run.sandbox.run(self.image, ["python3", "-c", script], limits=ctx.run.limits,
                                     out_dir=ctx.candidate_dir / "out", stage=Stage.EVALUATE,
                                     candidate_id=ctx.candidate_id)
        return Evaluation(fitness=float(result.ok), fitness_text="slept")


def run_once(root: Path, name: str, llm: ScriptedLLM, args: argparse.Namespace, executor: dict[str, Any],
             slots: int) -> tuple[float, int, float]:
    """(seconds, evaluations, mean evaluate-stage seconds) of one search."""
    config = build_config({
        "search": {"generations": args.generations, "candidates_per_generation": args.candidates,
                   "reflection_rounds": 0, "eval_slots": slots},
        "llm": {"meta": {"base_url": llm.base_url, "model": "scripted", "max_tokens": 64, "max_retries": 0}},
        "sandbox": {"cpus": 0.5, "memory_bytes": "256m", "timeout_s": 120},
        "executor": executor,
        "domain": {"eval_s": args.eval_s},
    })
    started = time.monotonic()
    run_search(DOMAIN, SleepDomain, config, root / name, stopper=Stopper(), remote=open_ray, write_report=False)
    seconds = time.monotonic() - started
    records = load_records(root / name)
    stages = [sum(s for stage, s in r.timings.items() if stage not in LLM_STAGES) for r in records]
    return seconds, len(records), statistics.mean(stages)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=9)
    parser.add_argument("--generations", type=int, default=1)
    parser.add_argument("--eval-s", type=float, default=2.0)
    parser.add_argument("--llm-s", type=float, default=0.5)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    def reply(body: dict[str, Any]) -> Reply:
        tag = str(body.get("seed", 0))
        return Reply(json.dumps({"thought": "square", "name": f"Square {tag}", "code": square(tag)}),
                     delay_s=args.llm_s)

    rows: list[tuple[str, float, int, float]] = []
    with tempfile.TemporaryDirectory(prefix="perf-ray-", dir="/tmp") as tmp, ScriptedLLM(default=reply) as llm:
        root = Path(tmp)
        for slots in (1, 3):
            seconds, n, stage = run_once(root, f"local-{slots}", llm, args, {"kind": "local"}, slots)
            rows.append((f"local executor, {slots} slot(s)", seconds, n, stage))
        nodes = [NodeSpec("evobox_head", head=True), NodeSpec("evobox_w1"), NodeSpec("evobox_w2")]
        cluster = LocalCluster(root / "cluster", nodes[:1])
        with cluster:
            os.environ.update(cluster.client_env())
            for count in (1, 2, 3):
                if count > 1:
                    cluster.nodes[nodes[count - 1].name] = nodes[count - 1]
                    cluster.start(nodes[count - 1].name)
                executor = {"kind": "ray", "address": cluster.address, "num_cpus": 1, "memory_bytes": 64 << 20}
                for slots in (1, 3) if count == 1 else (3,):
                    seconds, n, stage = run_once(root, f"ray-{count}-{slots}", llm, args, executor, slots)
                    rows.append((f"ray executor, {count} node(s), {slots} slot(s)", seconds, n, stage))
    print(f"workload: 2 baselines + {args.generations} x {args.candidates} candidates; "
          f"container work {args.eval_s:g} s, meta LLM {args.llm_s:g} s per call")
    print(f"{'run':40} {'seconds':>8} {'evals':>6} {'evals/min':>10} {'s per evaluation':>17}")
    for name, seconds, n, stage in rows:
        print(f"{name:40} {seconds:8.1f} {n:6d} {60 * n / seconds:10.1f} {stage:17.2f}")
    local_stage, ray_stage = rows[0][3], rows[2][3]
    print(f"per-candidate overhead of the Ray executor (time in evaluation stages, 1 node 1 slot vs local "
          f"1 slot; includes the node agent's start on first use): {ray_stage - local_stage:+.2f} s")


if __name__ == "__main__":
    main()
