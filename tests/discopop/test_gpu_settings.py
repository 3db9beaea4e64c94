"""The GPU settings' code path (IMDb-style reward model; MT-Bench-style judge through the
gateway) on CPU, with tiny stand-ins for GPT-2, the sentiment classifier and the datasets."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from engine.domains.discopop import baselines, layers
from engine.llm.endpoint import Endpoint
from engine.llm.gateway import Gateway
from engine.llm.scripted import ScriptedLLM
from engine.search.domain import RunContext
from tests.discopop.conftest import evaluate

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SMALL = {"betas": [0.1], "seeds": [0], "training": {"max_pairs": 32, "batch_size": 8}}


@pytest.fixture(scope="module")
def standins(dp_run: RunContext, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built inside the DiscoPOP runtime (the host has no torch)."""
    from engine.domains.discopop.config import DiscoPopConfig

    runtime = dp_run.images.runtime(DiscoPopConfig().runtime_name)
    image = dp_run.images.layer(runtime, {"standins.py": Path(__file__).with_name("standins.py").read_bytes()},
                                kind="discopop-test", labels={"evobox.run": dp_run.run_id})
    out = tmp_path_factory.mktemp("standins")
    result = dp_run.sandbox.run(image, ["python", "/opt/evobox/standins.py", "/out"], out_dir=out)
    assert result.ok, result.failure_reason()
    return out


@pytest.fixture(scope="module")
def hf_run(dp_run: RunContext, tmp_path_factory: pytest.TempPathFactory) -> RunContext:
    """Like the session's run, with a private cache: the converted stand-in data is per session."""
    return dataclasses.replace(dp_run, cache_dir=tmp_path_factory.mktemp("hf-cache"))


def hf_config(standins: Path, setting: str, **extra) -> dict:
    return {**SMALL, "setting": setting, "hf": {
        "policy_model": str(standins / "policy"), "dataset": str(standins / "data" / "pairs.jsonl"),
        "reward_model": str(standins / "reward"), "eval_prompts": 4, "max_new_tokens": 6, "eval_batch_size": 4,
        **extra}}


def test_imdb_setting_trains_an_hf_policy_and_scores_it_with_a_reward_model(prepared, hf_run, standins):
    domain = prepared(hf_run, **hf_config(standins, "imdb"))
    # the candidate's /in holds the training pairs; the evaluation prompts only the evaluator sees
    assert {p.name for p in domain.inputs_dir.iterdir()} == {"pairs.jsonl"}
    assert (domain.inputs_dir.parent / layers.ARTIFACT_EVAL / "eval_prompts.jsonl").is_file()
    result = evaluate(domain, hf_run, baselines.DPO)
    run = result.detail["per_beta"]["0.1"]["runs"]["0"]
    assert 0.0 <= run["reward"] <= 1.0 and run["kl"] >= 0 and run["n"] == 4
    assert result.detail["reference"]["kl"] == pytest.approx(0.0, abs=1e-4)
    assert math.isfinite(result.fitness)


def test_judge_setting_grades_answers_through_the_gateway(prepared, hf_run, standins, tmp_path):
    with ScriptedLLM(default="The answer is on topic. Rating: [[7]]") as llm, \
            Gateway(Endpoint(llm.base_url, "test-key", llm.model), tmp_path / "gateway") as gateway:
        run = dataclasses.replace(hf_run, gateway=gateway)
        domain = prepared(run, **hf_config(standins, "judge", judge_questions=str(standins / "questions.jsonl")))
        assert domain.needs_gateway
        result = evaluate(domain, run, baselines.DPO)
    assert result.fitness == pytest.approx(7.0)
    assert len(llm.requests) == 3  # one grade per question
    assert "[Question]" in llm.requests[0]["messages"][0]["content"]
