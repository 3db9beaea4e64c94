"""ADAS evaluation, sandboxed vs in-process: prints times and ratios, asserts nothing.

The same agents answer the same questions two ways, alternating, against one OpenAI-compatible
loopback server (its own process) that answers every call after a fixed latency:

- in-process, the papers' way: the agent's code `exec`'d in this process with the framework's
  names in scope, and a thread pool mapping `forward` over the questions; the framework is the
  one the sandbox runs (engine/domains/adas/box: same prompts, JSON mode, lenient parsing, seeds),
  calling the server directly with the openai client;
- evobox: the candidate's full path with the default configuration: its image layer is built,
  it is unit-tested in one container against the stub LLM, then it answers the questions in a
  second container through the real gateway (grant, budgets, transcript, secret guard).

Agents: Chain-of-Thought (1 call per question) and CoT self-consistency (5 calls per question,
in sequence). Goal (issue 14), 128 questions at 1 s latency: evobox >= 0.8x in-process for the
1-call agent and >= 0.9x for the 5-call agent ("ratio" = in-process time / evobox time).

Measured 2026-12-05 (2 cores, load average 1-4): 128 q at 1 s, 1 call 8.51 s vs 9.05 s (0.94x),
5 calls 40.57 vs 41.90 s (0.97x); at 0.5 s, 64/128 q: 1 call 0.83x/0.82x, 5 calls 0.92x/0.95x.
Under load 7-12 the same 1 s settings gave 0.77x and 0.92x (the fixed per-candidate cost grows).
Before issue 14 (64 q, 0.5 s): 0.33x and 0.48x.

Usage: python -m benchmarks.perf_adas_eval [--questions 64,128] [--latency 0.5,1] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import structlog

from engine.domains.adas.benchmarks import spec_for
from engine.config import SearchConfig
from engine.domains.adas.baselines import BASELINES, BaselineName
from engine.domains.adas.config import AdasConfig
from engine.domains.adas.domain import AdasDomain
from engine.llm.config import LLMConfig
from engine.llm.endpoint import Endpoint
from engine.llm.gateway import Gateway
from engine.paths import cache_dir
from engine.sandbox.images import ImageBuilder
from engine.sandbox.runner import Sandbox
from engine.search.candidate import Proposal
from engine.search.domain import CandidateContext, RunContext
from engine.llm.scripted import Reply, ScriptedLLM

THREADS = 16
AGENTS = {"1 call": BaselineName.COT, "5 calls": BaselineName.COT_SC}
GOALS = {"1 call": 0.8, "5 calls": 0.9}
MODEL = "bench-model"


def reply_for(latency_s: float) -> Callable[[dict[str, Any]], Reply]:
    """The server's answer to any call: every requested JSON field filled, the answer 42."""
    def reply(body: dict[str, Any]) -> Reply:
        system = body["messages"][0]["content"]
        fields = json.loads(system.split("keys:\n", 1)[1].split("\nDo not add", 1)[0])
        content = json.dumps({name: "42" if "answer" in name else f"some {name}" for name in fields})
        return Reply(content, prompt_tokens=150, completion_tokens=40, delay_s=latency_s)
    return reply


@contextmanager
def loopback_server(latency_s: float) -> Iterator[str]:
    """The OpenAI-compatible server, in a process of its own as a real one would be (in this
    process its threads would compete with both sides' for the GIL); its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.perf_adas_eval", "--serve", str(latency_s)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the server exits at EOF
        proc.wait(timeout=30)


def serve(latency_s: float) -> None:
    with ScriptedLLM(default=reply_for(latency_s), model=MODEL) as llm:
        print(llm.base_url, flush=True)
        sys.stdin.read()


def write_questions(root: Path, count: int) -> Path:
    """An MGSM-format file of `count` questions whose answer is 42 (so no candidate scores 0)."""
    data = root / f"mgsm-{count}"
    data.mkdir(parents=True, exist_ok=True)
    lines = [f"Tom has {40 - i % 30} apples and buys {2 + i % 30} more. How many apples has he? (#{i})\t42\n"
             for i in range(count)]
    (data / "mgsm_en.tsv").write_text("".join(lines), encoding="utf-8")
    return data


class InProcess:
    """The papers' evaluation: exec the agent here, map forward over the questions in a thread pool."""

    def __init__(self, base_url: str):
        sys.modules["evobox_llm"] = self._client_module(base_url)
        import engine.domains.adas.box as box  # noqa: PLC0415
        sys.modules.setdefault("adas_box", box)  # the framework imports its backend as adas_box.backend
        from adas_box import backend, harness  # noqa: PLC0415

        self.backend, self.harness = backend, harness
        backend.configure(backend.Settings(answer_hint=spec_for("mgsm").answer_hint, benchmark="mgsm",
                                           stub_shape=None, max_tokens=AdasConfig().agent_max_tokens))

    @staticmethod
    def _client_module(base_url: str) -> types.ModuleType:
        """The framework's `evobox_llm`, here calling the server with the openai client, as the papers do."""
        sdk = openai.OpenAI(base_url=base_url, api_key="sk-bench")
        module = types.ModuleType("evobox_llm")
        module.MODEL = MODEL  # type: ignore[attr-defined]
        module.ChatError = openai.APIStatusError  # type: ignore[attr-defined]
        module.chat = lambda body: sdk.chat.completions.create(**{"model": MODEL, **body}).model_dump()  # type: ignore[attr-defined]
        return module

    def run(self, code: str, questions: list[dict[str, Any]]) -> float:
        started = time.perf_counter()
        forward = self.harness.load_forward(code)

        def answer(question: dict[str, Any]) -> Any:
            self.backend.start_question(question["id"], None)
            return self.harness.to_answer(self.harness.solve(forward, question))

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            answers = list(pool.map(answer, questions))
        seconds = time.perf_counter() - started
        if answers.count("42") != len(questions):
            raise RuntimeError(f"in-process: {len(questions) - answers.count('42')} wrong answers")
        return seconds


@dataclass
class Timed:
    """One evobox evaluation: total seconds and the time of each stage."""

    total: float
    stages: dict[str, float] = field(default_factory=dict)


class Sandboxed:
    """evobox's candidate path: AdasDomain.evaluate with the run's sandbox, images and gateway."""

    def __init__(self, stack: ExitStack, base_url: str, work: Path):
        self.stack, self.base_url, self.work = stack, base_url, work
        self.sandbox = stack.enter_context(Sandbox(f"perf-adas-{secrets.token_hex(3)}"))
        self.images = ImageBuilder()
        self.domains: dict[int, tuple[AdasDomain, RunContext]] = {}
        self.count = 0

    def _domain(self, questions: int) -> tuple[AdasDomain, RunContext]:
        """One domain (and gateway, as one run has) per question count, all with default settings."""
        if questions not in self.domains:
            config = AdasConfig(source=str(write_questions(self.work, questions)), n_questions=0, threads=THREADS)
            domain = AdasDomain(config)
            demand = domain.llm_calls_in_flight() * SearchConfig().eval_slots  # as engine/search/runner.py
            gateway = self.stack.enter_context(Gateway(Endpoint(self.base_url, "sk-bench-secret", MODEL),
                                                       self.work / f"gw{questions}", demand=demand))
            run = RunContext(run_id=self.sandbox.run_id, run_dir=self.work / f"run{questions}", cache_dir=cache_dir(),
                             sandbox=self.sandbox, images=self.images, gateway=gateway, llm=LLMConfig())
            domain.prepare(run)
            self.domains[questions] = (domain, run)
        return self.domains[questions]

    def run(self, code: str, questions: int) -> Timed:
        domain, run = self._domain(questions)
        self.count += 1
        cid = f"c{self.count}"
        marks: list[tuple[str, float]] = []
        ctx = CandidateContext(run=run, candidate_id=cid, candidate_dir=run.run_dir / "candidates" / cid,
                               stage=lambda name: marks.append((name, time.perf_counter())),
                               log=structlog.get_logger())
        ctx.candidate_dir.mkdir(parents=True)
        started = time.perf_counter()
        evaluation = domain.evaluate(Proposal("agent", "", code), ctx)
        ended = time.perf_counter()
        if evaluation.detail["mean"] != 100.0:
            raise RuntimeError(f"evobox: mean score {evaluation.detail['mean']}, expected 100")
        bounds = [t for _, t in marks] + [ended]
        return Timed(ended - started, {name: bounds[i + 1] - t for i, (name, t) in enumerate(marks)})

    def questions(self, count: int) -> list[dict[str, Any]]:
        return [t.public() for t in self._domain(count)[0].tasks()]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s ({min(values):.2f}-{max(values):.2f})"


def measure(inproc: InProcess, boxed: Sandboxed, agent: str, questions: int, repeats: int) -> tuple[float, float]:
    code = BASELINES[AGENTS[agent]].code
    public = boxed.questions(questions)
    mine, theirs = [], []
    for _ in range(repeats):  # alternating, so that a change of machine load hits both sides
        mine.append(inproc.run(code, public))
        theirs.append(boxed.run(code, questions))
    stages = {name: statistics.median(t.stages.get(name, 0.0) for t in theirs) for name in ("build", "test", "evaluate")}
    ratio = statistics.median(mine) / statistics.median(t.total for t in theirs)
    print(f"{agent:8} {questions:4d} q  in-process {spread(mine)}  evobox {spread([t.total for t in theirs])}"
          f"  [build {stages['build']:.2f} test {stages['test']:.2f} evaluate {stages['evaluate']:.2f}]"
          f"  ratio {ratio:.2f}x", flush=True)
    return statistics.median(mine), ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", default="64,128", help="Question counts, comma-separated.")
    parser.add_argument("--latency", default="0.5,1", help="Seconds the server takes per call, comma-separated.")
    parser.add_argument("--agents", default=",".join(AGENTS), help=f"Among: {', '.join(AGENTS)}.")
    parser.add_argument("--repeats", type=int, default=2, help="Alternating in-process/evobox pairs per setting.")
    parser.add_argument("--serve", type=float, help=argparse.SUPPRESS)  # the server's own process
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return 0
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings only
    counts = [int(x) for x in args.questions.split(",")]
    agents = [a.strip() for a in args.agents.split(",")]
    work = Path(tempfile.mkdtemp(prefix="perf-adas-", dir="/tmp"))  # short: unix socket paths are capped
    ratios: dict[tuple[str, int, float], float] = {}
    print(f"{THREADS} threads per candidate; evobox = build + unit test + evaluate of the candidate, default config; "
          f"ratio = in-process / evobox (1.0 = as fast)")
    with ExitStack() as stack:
        for latency in (float(x) for x in args.latency.split(",")):
            base_url = stack.enter_context(loopback_server(latency))
            inproc, boxed = InProcess(base_url), Sandboxed(stack, base_url, work / f"l{latency:g}")
            print(f"\n--- server latency {latency:g} s per call")
            for questions in counts:
                for agent in agents:
                    ratios[(agent, questions, latency)] = measure(inproc, boxed, agent, questions, args.repeats)[1]
    print("\ngoals (128 questions, 1 s):", end="")
    for agent in agents:
        got = ratios.get((agent, 128, 1.0))
        if got is not None:
            print(f"  {agent} {got:.2f}x (goal {GOALS[agent]}x{'' if got >= GOALS[agent] else ', MISSED'})", end="")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
