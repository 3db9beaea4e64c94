"""Every kind of bad meta-LLM reply becomes a clear reason in the archive and a repair prompt,
and the run goes on."""

from __future__ import annotations

import json

import pytest

from engine.llm.scripted import Reply, ScriptedLLM
from engine.search.candidate import Status
from engine.search.pipeline import MAX_ASSISTANT_CHARS
from engine.search.stop import StopReason
from tests.search.conftest import ToyRunner, proposal, square, user_messages
from tests.third_domain.domain import BASELINES

BAD_REPLIES = {
    "not_json": ("Sure! I would square x.", Status.INVALID, "JSON"),
    "json_without_code": (json.dumps({"thought": "t", "name": "n"}), Status.INVALID, "'code'"),
    "code_not_a_string": (json.dumps({"thought": "t", "name": "n", "code": 5}), Status.INVALID, "must be a string"),
    "empty_code": (proposal("   \n"), Status.INVALID, "\"code\" is empty"),
    "empty_reply": ("", Status.INVALID, "empty"),
    "json_array": ("[1, 2, 3]", Status.INVALID, "JSON"),
    "syntax_error": (proposal("def f(x:\n    return x\n"), Status.INVALID, "syntax error at line 1"),
    "no_function": (proposal("y = 3\n"), Status.INVALID, "no function f(x)"),
    "wrong_signature": (proposal("def f(x, y):\n    return x\n"), Status.INVALID, "exactly one argument"),
    "gate_violation": (proposal("import subprocess\ndef f(x):\n    return x\n"), Status.INVALID, "static check"),
    "crashes_when_run": (proposal("def f(x):\n    return x[0]\n"), Status.FAILED, "TypeError"),
    "returns_non_number": (proposal("def f(x):\n    return 'x'\n"), Status.FAILED, "must return a number"),
    "megabyte_of_text": ("blah " * 200_000, Status.INVALID, "JSON"),
    "huge_code": (proposal("def f(x):\n    return x\n" + "# pad\n" * 40_000), Status.INVALID, "the limit is"),
    "duplicate_of_archive": (proposal("def f(x):  # same as a baseline\n\n    return x\n"), Status.INVALID,
                             "duplicate: the code is identical"),
}


@pytest.mark.parametrize("case", sorted(BAD_REPLIES))
def test_bad_reply_gets_a_reason_a_repair_prompt_and_the_run_goes_on(toy: ToyRunner, case: str) -> None:
    reply, status, reason = BAD_REPLIES[case]
    with ScriptedLLM([reply, proposal(square(), name="Fixed")]) as llm:
        run = toy(llm, search={"repair_rounds": 1})
        repair_request = llm.requests[1]
    assert run.reason is StopReason.COMPLETED
    record = run.records[-1]
    assert record.status is Status.OK and record.name == "Fixed"
    first = record.attempts[0]
    assert first.status is status
    assert reason in (first.error or ""), first.error
    assert reason in user_messages(repair_request)[-1]
    assert all(len(m["content"]) <= MAX_ASSISTANT_CHARS + 100 for m in repair_request["messages"])


@pytest.mark.parametrize("case", ["not_json", "wrong_signature", "duplicate_of_archive", "crashes_when_run"])
def test_unrepaired_failure_is_archived_with_reason_and_the_next_generation_runs(toy: ToyRunner, case: str) -> None:
    reply, status, reason = BAD_REPLIES[case]
    with ScriptedLLM([reply, proposal(square())]) as llm:
        run = toy(llm, search={"repair_rounds": 0, "generations": 2})
    failed, good = run.records[-2], run.records[-1]
    assert (failed.generation, failed.status, failed.fitness) == (1, status, None)
    assert reason in (failed.error or "")
    assert (good.generation, good.status) == (2, Status.OK)


def test_repair_repeating_its_own_failed_code_is_told_so(toy: ToyRunner) -> None:
    broken = proposal("def f(x):\n    return x[0]\n")
    with ScriptedLLM([broken, broken]) as llm:
        run = toy(llm, search={"repair_rounds": 1})
    assert "identical (ignoring layout and comments) to your attempt 1" in (run.records[-1].error or "")
    assert len([e for e in toy.evaluations() if e.startswith("start")]) == 3  # 2 baselines + 1, not 2


def test_duplicate_of_archive_is_not_evaluated(toy: ToyRunner) -> None:
    with ScriptedLLM([proposal(BASELINES[1].code.replace("    ", "  ") + "\n# again\n")]) as llm:
        run = toy(llm, search={"repair_rounds": 0})
    assert run.records[-1].status is Status.INVALID
    assert "Identity" in (run.records[-1].error or "")
    assert len([e for e in toy.evaluations() if e.startswith("start")]) == 2


def test_llm_server_failure_stops_the_run_and_resume_finishes_the_candidate(toy: ToyRunner) -> None:
    with ScriptedLLM([Reply(status=500, content="upstream down")]) as llm:
        run = toy(llm)
    assert run.reason is StopReason.ERROR and "HTTP 500" in run.detail
    assert [r.generation for r in run.records] == ["initial", "initial"]
    with ScriptedLLM([proposal(square())]) as llm:
        run = toy(llm)
    assert run.reason is StopReason.COMPLETED
    assert [(r.generation, r.status) for r in run.records][-1] == (1, Status.OK)
    assert len(run.records) == 3


def test_runaway_thought_is_truncated_and_the_candidate_still_scores(toy: ToyRunner) -> None:
    with ScriptedLLM([proposal(square(), thought="hmm " * 100_000)]) as llm:
        run = toy(llm)
    record = run.records[-1]
    assert record.status is Status.OK
    assert len(record.thought) < 25_000 and record.thought.endswith("[... truncated]")


def test_server_refusing_seed_is_asked_again_without_it(toy: ToyRunner) -> None:
    def no_seeds(body: dict) -> str | Reply:
        if "seed" in body:
            return Reply(status=400, content="Unrecognized request argument supplied: seed")
        return proposal(square(str(len(body["messages"]))), name="Unseeded")

    with ScriptedLLM(default=no_seeds) as llm:
        run = toy(llm, search={"generations": 2})
        has_seed = ["seed" in r for r in llm.requests]
    assert run.reason is StopReason.COMPLETED
    assert [r.status for r in run.records[2:]] == [Status.OK, Status.OK]
    first_unseeded = has_seed.index(False)
    assert any(has_seed[:first_unseeded]) and not any(has_seed[first_unseeded:])  # never sent again


def test_records_of_replies_without_code_have_ids_of_their_own(toy: ToyRunner) -> None:
    """Ids are unique per record: unreadable replies and duplicates too (not the hash of "")."""
    with ScriptedLLM(default="Sure! I would square x.") as llm:
        run = toy(llm, search={"generations": 2, "candidates_per_generation": 2, "repair_rounds": 0})
    generated = [r for r in run.records if r.generation != "initial"]
    assert len(generated) == 4 and {r.code for r in generated} == {""}
    assert len({r.id for r in run.records}) == len(run.records)
    assert all(r.code_id is None for r in generated)
