"""Parallel evaluation keeps a deterministic archive; stopped runs resume without loss or repeats."""

from __future__ import annotations

from pathlib import Path

from engine.llm.scripted import ScriptedLLM
from engine.search.archive import Generation
from engine.search.candidate import Status
from engine.search.observer import Observer
from engine.search.pipeline import request_seed
from engine.search.stop import Stopper, StopReason
from tests.search.conftest import ToyRunner, proposal, user_messages

PER_GENERATION = 4


def _slot_of(body: dict) -> tuple[int, int]:
    seed = body["seed"] - len(body["messages"])
    generation, rest = divmod(seed, request_seed(0, 1, 0, 0))
    return generation, rest // request_seed(0, 0, 1, 0)


def _slow_first(body: dict) -> str:
    """Candidate k of each generation sleeps less the later it is: later ones finish first."""
    generation, index = _slot_of(body)
    delay = 0.06 * (PER_GENERATION - index)
    code = f"import time\ndef f(x):\n    time.sleep({delay})\n    return x * x + {generation * 10 + index}\n"
    return proposal(code, name=f"g{generation}k{index}")


def _concurrency(lines: list[str]) -> int:
    running = peak = 0
    for line in lines:
        running += 1 if line.startswith("start") else -1
        peak = max(peak, running)
    return peak


def test_parallel_archive_order_is_deterministic(toy: ToyRunner, tmp_path: Path) -> None:
    outcomes = []
    for attempt in ("a", "b"):
        runner = ToyRunner(tmp_path / attempt)
        with ScriptedLLM(default=_slow_first) as llm:
            run = runner(llm, search={"generations": 2, "candidates_per_generation": PER_GENERATION,
                                      "eval_slots": 3})
            prompts = [user_messages(r)[0] for r in llm.requests if _slot_of(r)[0] == 2]
        assert run.reason is StopReason.COMPLETED
        generated = [r for r in run.records if r.generation != "initial"]
        assert [r.slot for r in generated] == [(g, k) for g in (1, 2) for k in range(PER_GENERATION)]
        assert [r.name for r in generated] == [f"g{g}k{k}" for g in (1, 2) for k in range(PER_GENERATION)]
        assert len(set(prompts)) == 1  # every candidate of a generation saw the same archive
        assert 2 <= _concurrency(runner.evaluations()) <= 3
        outcomes.append([(r.id, r.name, r.status, r.fitness, r.parents) for r in run.records])
    assert outcomes[0] == outcomes[1]


class _StopAt(Observer):
    """Requests a stop (as Ctrl-C does) when a given candidate reaches a given stage."""

    def __init__(self, stopper: Stopper, slot: tuple[Generation, int], stage: str):
        self.stopper, self.slot, self.stage_name = stopper, slot, stage

    def stage(self, slot: tuple[Generation, int], stage: str) -> None:
        if (slot, stage) == (self.slot, self.stage_name):
            self.stopper.request(StopReason.INTERRUPTED, "test stop")


def test_interrupt_finishes_in_flight_evaluation_and_resume_loses_nothing(toy: ToyRunner) -> None:
    stopper = Stopper()
    with ScriptedLLM(default=_slow_first) as llm:
        run = toy(llm, stopper=stopper, observer=_StopAt(stopper, (1, 0), "evaluate"),
                  search={"generations": 2, "candidates_per_generation": PER_GENERATION, "eval_slots": 1})
    assert run.reason is StopReason.INTERRUPTED
    first = [r.slot for r in run.records]
    assert (1, 0) in first  # the evaluation in flight was finished and archived
    assert not any(generation == 2 for generation, _ in first)  # nothing new was started
    with ScriptedLLM(default=_slow_first) as llm:
        run = toy(llm, search={"generations": 2, "candidates_per_generation": PER_GENERATION, "eval_slots": 1})
    slots = [r.slot for r in run.records]
    assert slots[: len(first)] == first
    assert slots == [("initial", 0), ("initial", 1)] + [(g, k) for g in (1, 2) for k in range(PER_GENERATION)]
    ends = [line for line in toy.evaluations() if line.startswith("end")]
    assert len(ends) == len(set(ends)) == len(slots)  # nothing evaluated twice


def test_finished_later_candidate_waits_in_the_journal_for_an_earlier_one(toy: ToyRunner) -> None:
    broken = proposal("def f(x):\n    return x[0]\n", name="Broken")

    def script(body: dict) -> str:
        _, index = _slot_of(body)
        if index == 0 and len(body["messages"]) == 2:
            return broken
        return proposal(f"def f(x):\n    return x * x + {index}\n", name=f"k{index}")

    stopper = Stopper()
    with ScriptedLLM(default=script) as llm:
        run = toy(llm, stopper=stopper, observer=_StopAt(stopper, (1, 0), "evaluate"),
                  search={"candidates_per_generation": 2, "eval_slots": 2, "repair_rounds": 1})
    # candidate 0 needed a repair after the stop: it waits in the journal, and so does candidate 1
    assert run.reason is StopReason.INTERRUPTED
    assert [r.generation for r in run.records] == ["initial", "initial"]
    assert sorted(p.name for p in (toy.run_dir / "pending").iterdir()) == ["1-0.json", "1-1.json"]
    with ScriptedLLM(default=script) as llm:
        run = toy(llm, search={"candidates_per_generation": 2, "eval_slots": 2, "repair_rounds": 1})
        assert len(llm.requests) == 1  # only candidate 0's repair: candidate 1's reply was journaled
        assert "TypeError" in user_messages(llm.requests[0])[-1]
    assert [(r.slot, r.name, r.status) for r in run.records[2:]] == [((1, 0), "k0", Status.OK),
                                                                     ((1, 1), "k1", Status.OK)]
    assert list((toy.run_dir / "pending").iterdir()) == []


def test_evaluation_slots_go_to_the_earliest_waiting_candidate() -> None:
    import threading
    import time

    from engine.search.slots import OrderedSlots

    slots = OrderedSlots(1)
    order: list[int] = []
    release = threading.Event()

    def first() -> None:
        with slots.hold(0):
            release.wait(5)

    def waiter(key: int) -> None:
        with slots.hold(key):
            order.append(key)

    holder = threading.Thread(target=first)
    holder.start()
    time.sleep(0.05)
    waiters = [threading.Thread(target=waiter, args=(key,)) for key in (3, 1, 2)]
    for thread in waiters:
        thread.start()
        time.sleep(0.05)
    release.set()
    for thread in [holder, *waiters]:
        thread.join(5)
    assert order == [1, 2, 3]


def test_same_code_in_one_generation_is_archived_once_whatever_the_timing(tmp_path: Path) -> None:
    same = proposal("def f(x):\n    return x * x\n", name="Square")
    results = []
    for slots in (1, 2, 3):
        runner = ToyRunner(tmp_path / f"slots{slots}")
        with ScriptedLLM(default=same) as llm:
            run = runner(llm, search={"candidates_per_generation": 3, "eval_slots": slots, "repair_rounds": 0})
        generated = run.records[2:]
        assert [r.status for r in generated] == [Status.OK, Status.INVALID, Status.INVALID]
        assert all("candidate 0 of generation 1" in (r.error or "") for r in generated[1:])
        assert all(r.fitness is None for r in generated[1:])
        assert len([e for e in runner.evaluations() if e == f"start {generated[0].code_id}"]) == 1  # evaluated once
        results.append([(r.slot, r.status, r.error) for r in run.records])
    assert results[0] == results[1] == results[2]
