"""DiscoPOP performance on the CPU proxy task, printed (never asserted):

1. candidates evaluated per hour (image layer + validity + 3 betas x 3 seeds of training +
   evaluation container), from full evaluations of the baselines;
2. in-container training time against the same training in-process on the host, as a ratio
   (goal <= 1.15), measured A/B/A/B to cancel drift from other load on the machine;
3. the proxy fitness of each baseline, of DiscoPOP's LRML, and of a zero and a flipped loss.

Run: .venv/bin/python -m benchmarks.discopop.perf_discopop [--skip-table] [--host-python PYTHON]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import structlog

from engine.domains.discopop import baselines
from engine.domains.discopop.config import DiscoPopConfig
from engine.domains.discopop.domain import DiscoPopDomain
from engine.llm.config import LLMConfig
from engine.paths import cache_dir
from engine.sandbox.images import ImageBuilder
from engine.sandbox.runner import Sandbox
from engine.search.candidate import CandidateFailure
from engine.search.domain import CandidateContext, RunContext

LOSSES = {"DPO": baselines.DPO, "SLiC hinge": baselines.HINGE, "IPO": baselines.IPO, "KTO pair": baselines.KTO_PAIR,
          "LRML (DiscoPOP)": baselines.LRML, "zero": baselines.ZERO, "flipped DPO": baselines.FLIPPED_DPO}
UNVALIDATED = {"zero", "flipped DPO"}
HOST_TRAIN = Path(__file__).with_name("host_train.py")
# The same thread settings as the runtime image (OMP_NUM_THREADS=1) and the container (1 CPU).
HOST_ENV = {"EVOBOX_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": tempfile.gettempdir()}


def context(run: RunContext, name: str) -> CandidateContext:
    directory = run.run_dir / "candidates" / f"{name.replace(' ', '_')}-{uuid.uuid4().hex[:6]}"
    directory.mkdir(parents=True)
    return CandidateContext(run=run, candidate_id=directory.name.lower().replace("(", "").replace(")", ""),
                            candidate_dir=directory, stage=lambda _: None, log=structlog.get_logger())


def fitness_table(domain: DiscoPopDomain, run: RunContext) -> list[float]:
    """Evaluates every loss; returns the wall seconds of the validated (real-candidate) ones."""
    seconds = []
    print(f"{'loss':18} {'fitness':>8} {'beta':>5} {'reward':>7} {'KL':>6}   by beta (median objective)")
    for name, code in LOSSES.items():
        started = time.perf_counter()
        try:
            result = domain.evaluate_code(code, context(run, name), validate=name not in UNVALIDATED)
        except CandidateFailure as failure:
            print(f"{name:18} failed: {failure.reason}")
            continue
        elapsed = time.perf_counter() - started
        if name not in UNVALIDATED:
            seconds.append(elapsed)
        best = result.detail["per_beta"][f"{result.detail['best_beta']:g}"]
        sweep = "  ".join(f"{b}:{v['objective_median']:+.3f}" for b, v in result.detail["per_beta"].items())
        print(f"{name:18} {result.fitness:+8.3f} {result.detail['best_beta']:5g} {best['reward_median']:7.3f} "
              f"{best['kl_median']:6.2f}   {sweep}   ({elapsed:.0f} s)", flush=True)
    reference = result.detail.get("reference") or {}
    print(f"{'reference policy':18} reward {reference.get('reward', float('nan')):.3f}, KL 0")
    return seconds


def container_train_seconds(domain: DiscoPopDomain, run: RunContext) -> tuple[float, float]:
    """(training seconds summed over runs, container wall seconds) for DPO in the candidate container."""
    ctx = context(run, "ratio")
    started = time.perf_counter()
    report = domain.train_code(baselines.DPO, ctx, validate=False)
    wall = time.perf_counter() - started
    return sum(r["seconds"] for r in report["runs"]), wall


def host_train_seconds(domain: DiscoPopDomain, python: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as scratch:
        candidate = Path(scratch) / "candidate_loss.py"
        candidate.write_text(baselines.DPO)
        out = Path(scratch) / "out"
        out.mkdir()
        started = time.perf_counter()
        command = [python, str(HOST_TRAIN), str(domain.inputs_dir), domain.job(validate=False).to_json(), str(candidate), str(out)]
        line = subprocess.run(command, check=True, capture_output=True, text=True, env=HOST_ENV).stdout
        wall = time.perf_counter() - started
    figures = json.loads(line.strip().splitlines()[-1])
    return figures["train_s"], wall


def default_host_python() -> str:
    """This interpreter when it has the `train` extra, else the development venv of the notes."""
    return sys.executable if importlib.util.find_spec("torch") else "/tmp/dp-venv/bin/python"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host-python", default=default_host_python(),
                        help="Python with torch/trl for the in-process side (this one with the `train` extra).")
    parser.add_argument("--repeats", type=int, default=2, help="A/B pairs for the ratio.")
    parser.add_argument("--skip-table", action="store_true")
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="perf-discopop-"))
    with Sandbox(f"perf-discopop-{uuid.uuid4().hex[:6]}") as sandbox:
        run = RunContext(run_id=sandbox.run_id, run_dir=run_dir, cache_dir=cache_dir(), sandbox=sandbox,
                         images=ImageBuilder(), gateway=None, llm=LLMConfig())
        domain = DiscoPopDomain(DiscoPopConfig())
        domain.prepare(run)
        config = domain.config
        print(f"CPU proxy task: {config.proxy.n_pairs} pairs, betas {config.betas} x seeds {config.seeds}, "
              f"1 CPU per container, kl_coef {config.kl_coef}\n")
        if not args.skip_table:
            seconds = fitness_table(domain, run)
            if seconds:
                per = statistics.median(seconds)
                print(f"\ncandidates per hour (evaluation only, median {per:.1f} s per candidate): {3600 / per:.0f}\n")
        container, host = [], []
        for _ in range(args.repeats):
            container.append(container_train_seconds(domain, run))
            host.append(host_train_seconds(domain, args.host_python))
        c_train, c_wall = (statistics.median(x) for x in zip(*container))
        h_train, h_wall = (statistics.median(x) for x in zip(*host))
        print(f"training, 9 runs of DPO: in container {c_train:.1f} s, in-process on host {h_train:.1f} s, "
              f"ratio {c_train / h_train:.3f} (goal <= 1.15)")
        print(f"whole process incl. imports and start: container {c_wall:.1f} s, host {h_wall:.1f} s, "
              f"ratio {c_wall / h_wall:.3f}")
    shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
