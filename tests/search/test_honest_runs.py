"""Outages are never the candidate's fault, and the run budget counts every dollar: the loop with
agents calling a loopback upstream through the real gateway (tests/search/agent_toy.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.llm.scripted import ScriptedLLM
from engine.search.candidate import Status
from engine.search.report import write_report
from engine.search.spend import AGENT_SPEND_NAME
from engine.search.stop import StopReason
from tests.search.agent_toy import PROVOKE, AgentToyRunner, AgentUpstream
from tests.search.conftest import proposal, square

DOLLAR_A_CALL = {"scripted": {"input_per_m": 100_000.0, "output_per_m": 0.0}}  # 10 prompt tokens = $1


def _distinct(body: dict) -> str:
    return proposal(square(str(body["seed"])), name=f"seed-{body['seed']}")


@pytest.fixture
def agents(tmp_path: Path) -> AgentToyRunner:
    return AgentToyRunner(tmp_path)


def test_an_upstream_outage_stops_the_run_and_resume_evaluates_the_candidate_once(agents: AgentToyRunner) -> None:
    upstream = AgentUpstream()

    def propose_then_go_down(body: dict) -> str:  # the baselines are evaluated, then the upstream dies
        upstream.down = True
        return _distinct(body)

    with upstream.serving(), ScriptedLLM(default=propose_then_go_down) as meta:
        run = agents(meta, upstream, search={"repair_rounds": 0})
        assert run.reason is StopReason.ERROR and "LLM upstream unreachable" in run.detail
        assert [r.generation for r in run.records] == ["initial", "initial"]
        assert agents.pending() == ["1-0.json"]  # not archived as failed: it stays pending

        upstream.down = False  # the upstream is back; the proposal is journaled, no meta call needed
        with ScriptedLLM(default=_distinct) as meta_again:
            again = agents(meta_again, upstream, search={"repair_rounds": 0})
            assert meta_again.requests == []
    assert again.reason is StopReason.COMPLETED
    generated = [r for r in again.records if r.generation == 1]
    assert len(generated) == 1 and generated[0].status is Status.OK and generated[0].fitness == 0.0
    assert agents.pending() == []


def test_errors_a_candidate_provokes_are_its_own_and_do_not_stop_the_run(agents: AgentToyRunner) -> None:
    provoking = proposal(f"def f(x):\n    return x * x  # {PROVOKE}\n", name="provoker")
    upstream = AgentUpstream()
    with upstream.serving(), ScriptedLLM(default=provoking) as meta:
        run = agents(meta, upstream, search={"repair_rounds": 0, "generations": 2})
    assert run.reason is StopReason.COMPLETED
    generated = [r for r in run.records if r.generation != "initial"]
    assert [r.status for r in generated] == [Status.FAILED, Status.INVALID]  # the second is a duplicate
    assert generated[0].error == "All 0 accuracy: every agent call failed"


def test_agent_spend_counts_toward_the_run_budget_and_a_cut_evaluation_stays_pending(agents: AgentToyRunner) -> None:
    upstream = AgentUpstream()
    llm = {"prices": DOLLAR_A_CALL, "budget_usd": 5.5}
    with upstream.serving():
        with ScriptedLLM(default=_distinct) as meta:
            run = agents(meta, upstream, search={"generations": 3}, llm=llm)
        # baselines: 2 x 2 agent calls = $4; generation 1: the proposal ($1), one agent call ($1)
        # crosses the budget, the second is refused: the evaluation is cut short, not scored
        assert run.reason is StopReason.LLM_BUDGET and "$6.0000 of $5.5000" in run.detail
        assert [r.generation for r in run.records] == ["initial", "initial"]
        assert [r.agent_usage.cost_usd for r in run.records] == [2.0, 2.0]
        assert [r.usage.cost_usd for r in run.records] == [0.0, 0.0]
        assert agents.pending() == ["1-0.json"]
        persisted = json.loads((agents.run_dir / AGENT_SPEND_NAME).read_text())
        assert persisted["calls"] == 5 and persisted["cost_usd"] == 5.0

        calls = upstream.calls
        with ScriptedLLM(default=_distinct) as meta:  # a resume under the same budget spends nothing
            again = agents(meta, upstream, search={"generations": 3}, llm=llm)
            assert meta.requests == []
        assert again.reason is StopReason.LLM_BUDGET and upstream.calls == calls

        with ScriptedLLM(default=_distinct) as meta:  # a bigger budget: the cut candidate is evaluated again, once
            done = agents(meta, upstream, search={"generations": 1}, llm={**llm, "budget_usd": 100.0})
    assert done.reason is StopReason.COMPLETED
    generated = [r for r in done.records if r.generation == 1]
    assert len(generated) == 1 and generated[0].status is Status.OK
    assert generated[0].usage.cost_usd == 1.0 and generated[0].agent_usage.calls == 2


def test_report_and_archive_show_give_meta_and_agent_spend_apart(agents: AgentToyRunner) -> None:
    upstream = AgentUpstream()
    with upstream.serving(), ScriptedLLM(default=_distinct) as meta:
        agents(meta, upstream, search={"generations": 2}, llm={"prices": DOLLAR_A_CALL})
    # meta: 2 proposals = $2; agents: 4 evaluations x 2 calls = $8
    page = write_report(agents.run_dir).read_text()
    assert "meta LLM: 2 calls, 30 tok, $2.0000" in page
    assert "agents and judge (gateway): 8 calls, 120 tok, $8.0000" in page
    shown = CliRunner().invoke(app, ["archive", "show", str(agents.run_dir)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "meta $2.0000 (2 calls, 30 tok), agents $8.0000 (8 calls, 120 tok)" in " ".join(shown.output.split())


def test_a_broken_docker_engine_is_retried_then_stops_the_run_with_the_candidate_pending(agents: AgentToyRunner) -> None:
    upstream = AgentUpstream()
    with upstream.serving():
        with ScriptedLLM(default=_distinct) as meta:  # one break: retried with backoff, then evaluated
            run = agents(meta, upstream, search={"repair_rounds": 0}, domain={"docker_breaks": 1})
        assert run.reason is StopReason.COMPLETED
        assert [r.status for r in run.records] == [Status.OK] * 3
        assert (agents.run_dir / "docker_breaks.log").read_text().count("break") == 1

        with ScriptedLLM(default=_distinct) as meta:  # broken for good: the run stops, the candidate waits
            run = agents(meta, upstream, search={"repair_rounds": 0, "generations": 2}, domain={"docker_breaks": 99})
        assert run.reason is StopReason.ERROR and "Docker engine unreachable" in run.detail
        assert (agents.run_dir / "docker_breaks.log").read_text().count("break") == 1 + 3
        assert agents.pending() == ["2-0.json"] and [r.generation for r in run.records][-1] == 1

        with ScriptedLLM(default=_distinct) as meta:  # fixed: resume evaluates it, once
            run = agents(meta, upstream, search={"repair_rounds": 0, "generations": 2})
            assert meta.requests == []
    assert run.reason is StopReason.COMPLETED
    assert [r.generation for r in run.records] == ["initial", "initial", 1, 2] and run.records[-1].status is Status.OK
