"""The judge setting with the judge's LLM down (stand-in models on CPU, as test_gpu_settings):
the evaluation is an infrastructure failure (UpstreamOutage), not the candidate's."""

from __future__ import annotations

import dataclasses

import pytest

from engine.domains.discopop import baselines
from engine.llm.endpoint import Endpoint
from engine.llm.gateway import Gateway
from engine.llm.probe import UpstreamOutage
from engine.llm.scripted import Reply, ScriptedLLM
from tests.discopop.conftest import evaluate
from tests.discopop.test_gpu_settings import hf_config, hf_run, standins  # noqa: F401 - the module's fixtures

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_a_judge_outage_is_an_infrastructure_failure(prepared, hf_run, standins, tmp_path):  # noqa: F811
    with ScriptedLLM(default=Reply("overloaded", status=503)) as llm, \
            Gateway(Endpoint(llm.base_url, "test-key", llm.model), tmp_path / "gateway") as gateway:
        run = dataclasses.replace(hf_run, gateway=gateway)
        domain = prepared(run, **hf_config(standins, "judge", judge_questions=str(standins / "questions.jsonl")))
        with pytest.raises(UpstreamOutage, match="LLM upstream unreachable"):
            evaluate(domain, run, baselines.DPO)
