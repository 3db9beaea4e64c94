"""Domain pieces that need no Docker: static check, baselines, scoring, prompts, config, transfer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.config import RunConfig, load_config
from engine.domains.adas.baselines import BASELINES, BaselineName
from engine.domains.adas.benchmarks import Benchmark, Split, Task
from engine.domains.adas.config import AdasConfig, PromptStyle
from engine.domains.adas.domain import AdasDomain, budget_failure, budget_refused, check_forward
from engine.domains.adas.transfer import TransferError, best_agents, transfer_config
from engine.sandbox.gate import check_code
from engine.search.archive import Archive, Record
from engine.search.candidate import CandidateFailure, Status
from engine.search.rundir import save_config


@pytest.mark.parametrize("name", list(BaselineName))
def test_every_baseline_passes_the_gate_and_the_domain_check(name):
    code = BASELINES[name].code
    check_code(code)
    check_forward(code)


@pytest.mark.parametrize(("code", "reason"), [
    ("def forward(self, taskInfo)\n  pass", "syntax error at line 1, column 28: expected ':'"),
    ("def a(self, t):\n  pass\ndef b(self, t):\n  pass", "define one function forward(self, taskInfo) (found: a, b)"),
    ("def forward(taskInfo):\n  pass", "forward must take exactly (self, taskInfo)"),
    ("async def forward(self, taskInfo):\n  pass", "forward must be a plain def, not async"),
])
def test_static_check_rejects_with_a_one_line_reason(code, reason):
    with pytest.raises(CandidateFailure) as failure:
        check_forward(code)
    assert failure.value.status is Status.INVALID and failure.value.reason == reason


def test_a_single_function_under_another_name_is_accepted():
    check_forward("def my_agent(self, taskInfo):\n    return 'x'\n")


TASKS = [Task(f"q{i}", f"question {i}", 5.0) for i in range(4)]


def test_score_is_the_bootstrap_median_of_per_question_scores():
    domain = AdasDomain(AdasConfig(bootstrap_resamples=2_000))
    answers = {"q0": {"answer": "5"}, "q1": {"answer": "The answer is 5"}, "q2": {"answer": "4"}}
    evaluation = domain.score(TASKS, answers)
    assert evaluation.detail["scores"] == {"q0": 1.0, "q1": 1.0, "q2": 0.0, "q3": 0.0}
    assert evaluation.detail["mean"] == 50.0 and evaluation.fitness == pytest.approx(50.0)
    assert evaluation.fitness_text.endswith("Median: 50.0%")


def test_junk_answers_from_the_container_score_zero():
    domain = AdasDomain(AdasConfig(bootstrap_resamples=1_000))
    answers = {"q0": {"answer": "5"}, "q1": "not a dict", "q2": {"answer": {"nested": 1}}, "q3": {"answer": None}}
    assert domain.score(TASKS, answers).detail["scores"] == {"q0": 1.0, "q1": 0.0, "q2": 0.0, "q3": 0.0}


def test_all_zero_accuracy_fails_with_the_most_common_error():
    domain = AdasDomain(AdasConfig())
    answers = {t.id: {"answer": "", "error": "KeyError: 'x' (agent.py line 3)"} for t in TASKS}
    with pytest.raises(CandidateFailure) as failure:
        domain.score(TASKS, answers)
    assert failure.value.reason == ("All 0 accuracy (mean score 0.0%); 4/4 questions failed, "
                                    "most often: KeyError: 'x' (agent.py line 3) [4x]")


def test_failure_reason_counts_the_distinct_errors_and_shows_the_wrong_answers():
    tasks = [Task(f"q{i}", f"question {i}", 5.0) for i in range(7)]
    long = "RuntimeError: " + "very long message " * 30
    errors = ["ValueError: bad (agent.py line 4)"] * 3 + [long, "timed out after 300s"]
    answers = {t.id: {"answer": "", "error": e} for t, e in zip(tasks, errors)}
    answers.update({"q5": {"answer": "seven", "error": None}, "q6": {"answer": "seven", "error": None}})
    with pytest.raises(CandidateFailure) as failure:
        AdasDomain(AdasConfig()).score(tasks, answers)
    assert failure.value.reason == (
        "All 0 accuracy (mean score 0.0%); 5/7 questions failed, most often: ValueError: bad (agent.py line 4) [3x]; "
        f"{long[:160]} [1x]; timed out after 300s [1x]; answers scored 0, most often \"seven\" [2x]; "
        "expected: Your answer: ONLY the final number as an integer, nothing else.")


def test_failure_reason_without_errors_never_quotes_private_benchmarks_answers():
    answers = {t.id: {"answer": "The options say (C)", "error": None} for t in TASKS}
    with pytest.raises(CandidateFailure) as failure:
        AdasDomain(AdasConfig(benchmark=Benchmark.GPQA)).score(TASKS, answers)
    assert failure.value.reason == ("All 0 accuracy (mean score 0.0%); answers scored 0; "
                                    "expected: Your answer: ONLY the letter of the chosen option (A, B, C or D).")


def test_llm_budget_is_sized_per_question():
    config = AdasConfig(llm_calls_per_question=120, llm_tokens_per_question=1_000)
    assert config.llm_budget(128) == (120 * 128, 128_000)
    assert AdasConfig().llm_budget(5) == (750, 1_500_000)  # the local run: 150 calls per question
    assert AdasDomain(config).evaluation_key() != AdasDomain(AdasConfig()).evaluation_key()


def test_proposal_prompt_has_the_papers_sections_and_stays_compact():
    domain = AdasDomain(AdasConfig())
    prompt = domain.proposal_prompt('[{"name": "ARCHIVE-MARKER"}]')
    order = ["# Domain", "# Framework", "class LLMAgentBase", "# Output format", '"thought"', "# Rules",
             "ARCHIVE-MARKER", "# Your task"]
    positions = [prompt.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert len(prompt) < 8_000  # ~2,000 tokens before the archive: ~40 s on the local model
    full = AdasDomain(AdasConfig(prompt_style=PromptStyle.FULL)).proposal_prompt("[]")
    assert "# Common mistakes" in full and "# Common mistakes" not in prompt


def test_reflection_and_repair_prompts():
    domain = AdasDomain(AdasConfig())
    assert len(domain.reflection_prompts()) == 2
    assert "boom (agent.py line 2)" in domain.repair_prompt("boom (agent.py line 2)")


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValidationError):
        AdasConfig(benchmark="mgsm", questions=5)
    with pytest.raises(ValidationError):
        AdasConfig(benchmark="imagenet")
    assert AdasConfig(memory="1g").memory == 1024**3


def test_evaluation_key_changes_with_the_setting_only():
    key = AdasDomain(AdasConfig()).evaluation_key()
    assert key != AdasDomain(AdasConfig(split=Split.TEST)).evaluation_key()
    assert key != AdasDomain(AdasConfig(n_questions=7)).evaluation_key()
    assert key == AdasDomain(AdasConfig(prompt_style=PromptStyle.FULL, baselines=[])).evaluation_key()


def _record(index, generation, fitness, status=Status.OK):
    return Record(id=f"id{generation}{index}", name=f"agent-{generation}-{index}", thought="t",
                  code=f"def forward(self, taskInfo):\n    return '{index}'\n", generation=generation, index=index,
                  status=status, fitness=fitness)


def _source_run(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"domain": "adas"}))
    save_config(RunConfig(domain={"benchmark": "mgsm", "n_questions": 6}), run_dir)
    archive = Archive(run_dir / "archive.jsonl")
    for record in [_record(0, "initial", 90.0), _record(0, 1, 40.0), _record(0, 2, 60.0),
                   _record(1, 2, None, Status.FAILED), _record(0, 3, 50.0)]:
        archive.append(record)
    return run_dir


def test_best_agents_are_the_top_discovered_ones_best_first(tmp_path):
    assert [p.name for p in best_agents(_source_run(tmp_path), 2)] == ["agent-2-0", "agent-3-0"]


def test_transfer_config_targets_the_new_setting_with_no_generations(tmp_path):
    run_dir = _source_run(tmp_path)
    config = transfer_config(run_dir, Benchmark.DROP, Split.TEST, model="gpt-4o-mini", top_k=2)
    assert config.search.generations == 0 and config.llm.agent.model == "gpt-4o-mini"
    domain = AdasDomain(AdasConfig.model_validate(config.domain))
    assert domain.config.benchmark is Benchmark.DROP and domain.config.n_questions == 0
    assert [p.name for p in domain.baselines()][-2:] == ["agent-2-0", "agent-3-0"]
    assert len(domain.baselines()) == len(AdasConfig().baselines) + 2


def test_transfer_refuses_a_run_of_another_domain(tmp_path):
    run_dir = _source_run(tmp_path)
    (run_dir / "run.json").write_text(json.dumps({"domain": "discopop"}))
    with pytest.raises(TransferError):
        transfer_config(run_dir, Benchmark.MGSM, Split.TEST)


CONFIGS = sorted((Path(__file__).resolve().parents[2] / "engine" / "domains" / "adas" / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_are_valid_run_configs(path):
    config = load_config(path)
    domain = AdasConfig.model_validate(config.domain)
    if path.stem != "local":
        assert config.llm.meta.model.startswith("gpt-4o") and config.llm.agent.model.startswith("gpt-3.5-turbo")
        assert config.search.generations in (25, 30) and len(domain.baselines) == 7 and domain.n_questions == 0


def test_default_domain_config_is_the_local_run():
    local = AdasConfig.model_validate(load_config(next(p for p in CONFIGS if p.stem == "local")).domain)
    assert local == AdasConfig()


def test_a_budget_refusal_among_the_answers_is_a_budget_failure():
    refused = "BudgetSpent: LLM token budget: this prompt may take up to 9,000 tokens (agent.py line 3)"
    answers = {"q0": {"answer": "5", "error": None}, "q1": {"answer": "", "error": refused}, "q2": "junk"}
    assert budget_refused(TASKS, answers) and not budget_refused(TASKS, {"q0": {"answer": "5", "error": None}})
    failure = budget_failure("the agent LLM tokens left were too few for a call", TASKS, answers)
    assert failure.status is Status.FAILED and failure.reason == (
        "LLM budget spent: the agent LLM tokens left were too few for a call before the evaluation ended; design the "
        f"agent to make fewer or shorter LLM calls per question; 1/4 questions failed, most often: {refused} [1x]")


def test_each_question_thread_counts_as_one_llm_call_in_flight():
    """The gateway's default concurrency is this times the run's evaluation slots."""
    assert AdasDomain(AdasConfig(threads=16)).llm_calls_in_flight() == 16
