"""Every baseline and a hand-written paper-style agent, each in its own container, answering
through the real gateway to a scripted LLM; scored outside the container."""

from __future__ import annotations

import json
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from engine.domains.adas.baselines import BASELINES, BaselineName
from engine.domains.adas.config import AdasConfig
from engine.domains.adas.domain import AdasDomain
from engine.llm.config import LLMConfig
from engine.llm.endpoint import Endpoint
from engine.llm.gateway import Gateway
from engine.llm.scripted import ScriptedLLM
from engine.sandbox.runner import Sandbox
from engine.search.candidate import CandidateFailure, Proposal, Status
from engine.search.domain import CandidateContext, RunContext
from tests.adas.test_framework import PAPER_STYLE

pytestmark = pytest.mark.docker

QUESTIONS = [("Tom has 40 apples and buys 2 more. How many?", 42), ("What is 6 times 7?", 42),
             ("What is 50 minus 8?", 42), ("What is 3 plus 4?", 7)]


def reply_by_fields(body: dict) -> str:
    """Answer 42 whatever the question; fill every other requested field sensibly."""
    system = body["messages"][0]["content"]
    fields = json.loads(system.split("keys:\n", 1)[1].split("\nDo not add", 1)[0])
    values = {"answer": "42", "correct": "True", "choice": "math"}
    return json.dumps({name: values.get(name, f"some {name}") for name in fields})


class Harness:
    def __init__(self, domain: AdasDomain, run: RunContext, llm: ScriptedLLM):
        self.domain, self.run, self.llm = domain, run, llm
        self.count = 0

    def evaluate(self, code: str):
        self.count += 1
        cid = f"c{self.count}"
        ctx = CandidateContext(run=self.run, candidate_id=cid, candidate_dir=self.run.run_dir / "candidates" / cid,
                               stage=lambda _stage: None, log=structlog.get_logger())
        ctx.candidate_dir.mkdir(parents=True)
        return self.domain.evaluate(Proposal("agent", "thought", code), ctx), ctx


@pytest.fixture(scope="module")
def harness(docker_client, image_builder) -> Iterator[Harness]:
    work = Path(tempfile.mkdtemp(prefix="adas-", dir="/tmp"))  # short: unix socket paths are capped
    data = work / "mgsm"
    data.mkdir()
    (data / "mgsm_en.tsv").write_text("".join(f"{q}\t{a}\n" for q, a in QUESTIONS), encoding="utf-8")
    config = AdasConfig(source=str(data), n_questions=0, threads=2, question_timeout_s=30, cpus=0.5,
                        bootstrap_resamples=2_000, selftest_timeout_s=10)
    domain = AdasDomain(config)
    with ScriptedLLM(default=reply_by_fields, model="scripted") as llm, \
            Gateway(Endpoint(llm.base_url, "sk-test-secret-key", "scripted"), work / "llm") as gateway, \
            Sandbox(f"adastest-{secrets.token_hex(4)}", client=docker_client) as sandbox:
        run = RunContext(run_id=sandbox.run_id, run_dir=work / "run", cache_dir=work / "cache", sandbox=sandbox,
                         images=image_builder, gateway=gateway, llm=LLMConfig())
        domain.prepare(run)
        yield Harness(domain, run, llm)


@pytest.mark.parametrize("name", list(BaselineName))
def test_baseline_runs_in_its_container_and_is_scored_outside(harness, name):
    before = len(harness.llm.requests)
    evaluation, ctx = harness.evaluate(BASELINES[name].code)
    assert evaluation.detail["scores"] == {"mgsm-en-0": 1.0, "mgsm-en-1": 1.0, "mgsm-en-2": 1.0, "mgsm-en-3": 0.0}
    assert evaluation.fitness == pytest.approx(75.0)
    assert evaluation.fitness_text.startswith("95% Bootstrap Confidence Interval: (")
    assert len(harness.llm.requests) > before
    assert (ctx.candidate_dir / "llm_transcript.jsonl").exists()


def test_hand_written_paper_style_agent_runs_in_its_container(harness):
    evaluation, _ = harness.evaluate(PAPER_STYLE)
    assert evaluation.detail["mean"] == pytest.approx(75.0)


def test_questions_sent_to_the_container_carry_no_gold_answer(harness):
    _, ctx = harness.evaluate(BASELINES[BaselineName.COT].code)
    sent = json.loads((ctx.candidate_dir / "in" / "questions.json").read_text())
    assert [set(q) for q in sent] == [{"id", "question", "inputs"}] * 4
    assert "42" not in json.dumps(sent)  # no question above mentions 42


def test_failing_unit_test_stops_the_candidate_before_any_llm_call(harness):
    before = len(harness.llm.requests)
    code = "def forward(self, taskInfo):\n    return LLMAgentBase(['answer'], 'A')([taskInfo], 'Go.')\n"
    with pytest.raises(CandidateFailure) as failure:
        harness.evaluate(code)
    assert failure.value.status is Status.FAILED
    assert failure.value.reason == "unit test: forward must return an Info or a string, got list"
    assert len(harness.llm.requests) == before


def test_agent_code_is_not_loaded_for_the_evaluation_before_its_unit_test_passed(harness):
    """The evaluation's container starts during the unit test, with the grant; the agent's code
    (here calling the LLM as soon as it is loaded) runs there only after a passed unit test."""
    before = len(harness.llm.requests)
    code = ("import evobox_llm\ntry:\n    evobox_llm.chat({'messages': [{'role': 'user', 'content': 'early'}]})\n"
            "except Exception:\n    pass\n\n\ndef forward(self, taskInfo):\n"
            "    return LLMAgentBase(['answer'], 'A')([taskInfo], 'Go.')\n")
    with pytest.raises(CandidateFailure) as failure:
        harness.evaluate(code)
    assert failure.value.reason.startswith("unit test: ")
    assert len(harness.llm.requests) == before


def test_all_zero_accuracy_is_a_failure_with_the_reason(harness):
    code = ("def forward(self, taskInfo):\n    LLMAgentBase(['answer'], 'A')([taskInfo], 'Go.')\n"
            "    if 'stub' in taskInfo.content:\n        return 'x'\n    return 'no idea'\n")
    with pytest.raises(CandidateFailure) as failure:
        harness.evaluate(code)
    assert failure.value.status is Status.FAILED and failure.value.reason.startswith("All 0 accuracy")


def test_crashing_questions_are_named_in_the_failure(harness):
    code = ("def forward(self, taskInfo):\n    answer = LLMAgentBase(['answer'], 'A')([taskInfo], 'Go.')[0]\n"
            "    if answer.content == '42':\n        raise ValueError('bad luck')\n    return answer\n")
    with pytest.raises(CandidateFailure) as failure:
        harness.evaluate(code)
    assert "4/4 questions failed, most often: ValueError: bad luck (agent.py line 4)" in failure.value.reason
