"""Each budget ends the run cleanly, says which, and leaves a resumable run."""

from __future__ import annotations

from engine.llm.scripted import ScriptedLLM
from engine.search.candidate import Status
from engine.search.stop import StopReason
from tests.search.conftest import ToyRunner, proposal, square


def _distinct(body: dict) -> str:
    return proposal(square(str(body["seed"])), name=f"seed-{body['seed']}")


def test_generations_budget_completes(toy: ToyRunner) -> None:
    with ScriptedLLM(default=_distinct) as llm:
        run = toy(llm, search={"generations": 3})
    assert run.reason is StopReason.COMPLETED and run.detail == "3 generations done"
    assert [r.generation for r in run.records] == ["initial", "initial", 1, 2, 3]


def test_wall_time_budget_stops_cleanly_and_resume_continues(toy: ToyRunner) -> None:
    with ScriptedLLM(default=_distinct) as llm:
        run = toy(llm, search={"generations": 50, "wall_time_s": 1.0}, domain={"eval_delay_s": 0.3})
    assert run.reason is StopReason.WALL_TIME and "wall-time budget of 1s spent" in run.detail
    done = len(run.records)
    assert 2 <= done < 52
    with ScriptedLLM(default=_distinct) as llm:  # the budget covers the whole run, not each process
        again = toy(llm, search={"generations": 50, "wall_time_s": 1.0}, domain={"eval_delay_s": 0.3})
        assert llm.requests == []
    assert again.reason is StopReason.WALL_TIME and len(again.records) == done
    with ScriptedLLM(default=_distinct) as llm:
        run = toy(llm, search={"generations": done})  # finish the generations it reached
    assert run.reason is StopReason.COMPLETED
    assert [r.slot for r in run.records] == [("initial", 0), ("initial", 1)] + [(g, 0) for g in range(1, done + 1)]


def test_dollar_budget_stops_after_the_paid_candidate_is_archived(toy: ToyRunner) -> None:
    prices = {"scripted": {"input_per_m": 100_000.0, "output_per_m": 0.0}}  # 10 prompt tokens = $1 a call
    with ScriptedLLM(default=_distinct) as llm:
        run = toy(llm, search={"generations": 10}, llm={"prices": prices, "budget_usd": 2.5})
        calls = len(llm.requests)
    assert run.reason is StopReason.LLM_BUDGET and "$3.0000 of $2.5000" in run.detail
    assert calls == 3
    generated = [r for r in run.records if r.generation != "initial"]
    assert [r.status for r in generated] == [Status.OK] * 3
    assert sum(r.usage.cost_usd for r in generated) == 3.0


def test_token_budget_stops_and_counts_spend_of_earlier_processes(toy: ToyRunner) -> None:
    with ScriptedLLM(default=_distinct) as llm:
        run = toy(llm, search={"generations": 10}, llm={"budget_tokens": 40})
    assert run.reason is StopReason.LLM_BUDGET and "45 of 40 tokens" in run.detail
    assert len(run.records) == 5
    with ScriptedLLM(default=_distinct) as llm:  # resuming under the same budget spends nothing more
        run = toy(llm, search={"generations": 10}, llm={"budget_tokens": 40})
        assert llm.requests == []
    assert run.reason is StopReason.LLM_BUDGET and len(run.records) == 5
