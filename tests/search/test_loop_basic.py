from __future__ import annotations

from engine.llm.scripted import ScriptedLLM
from engine.search.candidate import Status
from engine.search.stop import StopReason
from tests.search.conftest import ToyRunner, proposal, square, user_messages


def test_baselines_then_candidate_are_archived_in_order(toy: ToyRunner) -> None:
    with ScriptedLLM([proposal(square(), name="Square")]) as llm:
        run = toy(llm)
    assert run.reason is StopReason.COMPLETED
    assert [(r.generation, r.index) for r in run.records] == [("initial", 0), ("initial", 1), (1, 0)]
    best = run.records[-1]
    assert best.status is Status.OK and best.fitness == 0.0 and best.name == "Square"
    assert best.usage.calls == 1 and best.usage.prompt_tokens == 10
    assert set(best.timings) >= {"propose", "check", "evaluate", "build", "test", "score"}
    assert best.parents == [run.records[0].id, run.records[1].id]


def test_reflection_rounds_continue_the_same_conversation(toy: ToyRunner) -> None:
    replies = [proposal(square("a"), name="First"), proposal(square("b"), name="Second"),
               proposal(square("c"), name="Final")]
    with ScriptedLLM(replies) as llm:
        run = toy(llm, search={"reflection_rounds": 2})
        requests = llm.requests
    assert len(requests) == 3
    assert [len(r["messages"]) for r in requests] == [2, 4, 6]
    assert requests[2]["messages"][4]["content"] == replies[1]  # the model sees its own earlier replies
    assert user_messages(requests[2])[-1] == "Reflect again: final answer."
    assert run.records[-1].name == "Final"


def test_unreadable_reflection_keeps_the_proposal_it_reflected_on(toy: ToyRunner) -> None:
    with ScriptedLLM([proposal(square(), name="Kept"), "I think it is fine."]) as llm:
        run = toy(llm, search={"reflection_rounds": 1})
    assert run.records[-1].status is Status.OK and run.records[-1].name == "Kept"


def test_repair_shows_the_error_and_a_fixed_candidate_scores(toy: ToyRunner) -> None:
    broken = "def f(x):\n    return 1 / 0\n"
    with ScriptedLLM([proposal(broken), proposal(square(), name="Fixed")]) as llm:
        run = toy(llm)
        repair_request = llm.requests[1]
    record = run.records[-1]
    assert record.status is Status.OK and record.name == "Fixed"
    assert [a.status for a in record.attempts] == [Status.FAILED, Status.OK]
    assert "ZeroDivisionError" in (record.attempts[0].error or "")
    assert "ZeroDivisionError" in user_messages(repair_request)[-1]


def test_failure_after_all_repairs_is_archived_with_reason_and_no_fitness(toy: ToyRunner) -> None:
    with ScriptedLLM(default="not json at all") as llm:
        run = toy(llm, search={"repair_rounds": 2, "generations": 2})
        calls = len(llm.requests)
    failed = [r for r in run.records if r.generation != "initial"]
    assert [r.generation for r in failed] == [1, 2]
    assert calls == 6  # 1 proposal + 2 repairs, per candidate
    for record in failed:
        assert record.status is Status.INVALID and record.fitness is None
        assert len(record.attempts) == 3 and "JSON" in (record.error or "")


def test_baseline_evaluations_are_cached_per_setting(toy: ToyRunner, tmp_path) -> None:
    with ScriptedLLM(default=proposal(square())) as llm:
        toy(llm, search={"generations": 0})
    assert len([e for e in toy.evaluations() if e.startswith("start")]) == 2
    other = ToyRunner(tmp_path / "second")
    other.cache_dir = toy.cache_dir
    with ScriptedLLM(default=proposal(square())) as llm:
        run = other(llm, search={"generations": 0})
    assert other.evaluations() == []
    assert all(r.cached and r.status is Status.OK for r in run.records)
    changed = ToyRunner(tmp_path / "third")
    changed.cache_dir = toy.cache_dir
    with ScriptedLLM(default=proposal(square())) as llm:
        changed(llm, search={"generations": 0}, domain={"xs": [1.0, 2.0]})
    assert len([e for e in changed.evaluations() if e.startswith("start")]) == 2
