"""Agents written for the ADAS paper's framework (tests/adas/paper_agents/), on all five
benchmarks: each passes the gate and the stub-LLM unit test, and gets scored through the real
candidate path (its own image layer and containers, the real gateway) against a scripted LLM
that replies like a capable one."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from engine.domains.adas.benchmarks import Benchmark, load_tasks, spec_for
from engine.domains.adas.config import AdasConfig
from engine.domains.adas.domain import AdasDomain, check_forward
from engine.llm.config import LLMConfig
from engine.llm.endpoint import Endpoint
from engine.llm.gateway import Gateway
from engine.llm.scripted import ScriptedLLM
from engine.sandbox.gate import check_code
from engine.sandbox.runner import Sandbox
from engine.search.candidate import CandidateFailure, Proposal, Status
from engine.search.domain import CandidateContext, RunContext
from tests.adas.boxenv import run_harness
from tests.adas.paper_agents import benchmark_of, paper_agents
from tests.adas.plausible import plausible_reply, write_datasets

AGENTS = paper_agents()


def test_every_benchmark_has_paper_style_agents():
    assert {benchmark_of(name) for name in AGENTS} == set(Benchmark)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[Benchmark, str]:
    return write_datasets(tmp_path_factory.mktemp("data"))


def config_for(benchmark: Benchmark, sources: dict[Benchmark, str], **changes) -> AdasConfig:
    return AdasConfig(benchmark=benchmark, source=sources[benchmark], n_questions=0, repeats=1, threads=2,
                      question_timeout_s=60, cpus=0.5, bootstrap_resamples=1_000, selftest_timeout_s=20, **changes)


@pytest.mark.parametrize("name", AGENTS)
def test_paper_agent_passes_the_gate_and_the_static_check(name):
    check_code(AGENTS[name])
    check_forward(AGENTS[name])


@pytest.mark.parametrize("name", AGENTS)
def test_paper_agent_passes_the_stub_selftest(tmp_path, sources, name):
    benchmark = benchmark_of(name)
    secret = b"paper-agents-test" if spec_for(benchmark).secret_order else None  # GPQA's option order
    questions = [task.public() for task in load_tasks(benchmark, source=sources[benchmark], repeats=1,
                                                      order_secret=secret)]
    report = run_harness(tmp_path, "selftest", AGENTS[name], questions, benchmark=benchmark.value,
                         answer_hint=spec_for(benchmark).answer_hint, selftest_timeout_s=20)
    assert report["ok"] is True, report["reason"]


class World:
    """One scripted LLM, gateway and sandbox for every agent; a domain per benchmark."""

    def __init__(self, run: RunContext, sources: dict[Benchmark, str]):
        self.run, self.sources, self.count = run, sources, 0

    def evaluate(self, name: str, **changes):
        benchmark = benchmark_of(name)
        domain = AdasDomain(config_for(benchmark, self.sources, **changes))
        domain.prepare(self.run)
        self.count += 1
        cid = f"{name}-{self.count}"
        ctx = CandidateContext(run=self.run, candidate_id=cid, candidate_dir=self.run.run_dir / "candidates" / cid,
                               stage=lambda _stage: None, log=structlog.get_logger())
        ctx.candidate_dir.mkdir(parents=True)
        return domain.evaluate(Proposal(name, "thought", AGENTS[name]), ctx)


@pytest.fixture(scope="module")
def world(docker_client, image_builder, sources) -> Iterator[World]:
    work = Path(tempfile.mkdtemp(prefix="adasp-", dir="/tmp"))  # short: unix socket paths are capped
    with ScriptedLLM(default=plausible_reply, model="scripted") as llm, \
            Gateway(Endpoint(llm.base_url, "sk-test-secret-key", "scripted"), work / "llm") as gateway, \
            Sandbox(f"adaspaper-{secrets.token_hex(4)}", client=docker_client) as sandbox:
        run = RunContext(run_id=sandbox.run_id, run_dir=work / "run", cache_dir=work / "cache", sandbox=sandbox,
                         images=image_builder, gateway=gateway, llm=LLMConfig())
        yield World(run, sources)


@pytest.mark.docker
@pytest.mark.parametrize("name", AGENTS)
def test_paper_agent_is_scored_right_in_its_container(world, name):
    evaluation = world.evaluate(name)
    assert set(evaluation.detail["scores"].values()) == {1.0}, evaluation.detail
    assert evaluation.detail["failed_questions"] == 0


@pytest.mark.docker
def test_a_spent_budget_fails_the_candidate_and_says_so(world):
    # 10 calls per question (5 experts + 5 ratings), 4 allowed per question.
    with pytest.raises(CandidateFailure) as failure:
        world.evaluate("mmlu_weighted_experts", llm_calls_per_question=4)
    reason = failure.value.reason
    assert failure.value.status is Status.FAILED
    assert reason.startswith("LLM budget spent: 8 of 8 agent LLM calls (4 per question x 2 questions) were used up "
                             "before the evaluation ended; design the agent to make fewer or shorter LLM calls per question; "
                             "2/2 questions failed, most often: BudgetSpent: LLM call budget spent"), reason
    assert reason.endswith("[2x]")
