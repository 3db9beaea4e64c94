"""The test-split verdict: a paired bootstrap of the best discovered agent (chosen on
validation) against the best baseline, over the test questions both answered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config import RunConfig
from engine.domains.adas.baselines import BASELINES, BaselineName
from engine.domains.adas.benchmarks.bootstrap import paired_difference
from engine.domains.adas.config import AdasConfig
from engine.domains.adas.final_test import FINAL_DIR, Verdict, best_baseline, compare, final_rows, lead_html
from engine.search.archive import Archive, Record
from engine.search.candidate import Status
from engine.search.rundir import save_config


def test_paired_difference_cancels_shared_difficulty() -> None:
    better = [1.0] * 10 + [0.0] * 10
    worse = [1.0] * 8 + [0.0] * 12  # the same questions, two fewer right
    result = paired_difference(better, worse, resamples=5_000)
    assert result.mean == pytest.approx(10.0) and result.low >= 0
    with pytest.raises(ValueError, match="one score of each"):
        paired_difference([1.0], [1.0, 0.0])


def _record(index: int, generation: int | str, name: str, code: str, fitness: float,
            scores: dict[str, float] | None = None) -> Record:
    detail = {"scores": scores, "n": len(scores), "split": "test"} if scores else {}
    return Record(id=f"r{generation}{index}", name=name, thought="", code=code, generation=generation, index=index,
                  status=Status.OK, fitness=fitness, fitness_text=f"Median: {fitness}%", fitness_detail=detail)


def _run(tmp_path: Path, agent_test: list[float], baseline_test: list[float]) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"domain": "adas"}))
    save_config(RunConfig(domain={}), run_dir)
    cot, step_back = BASELINES[BaselineName.COT], BASELINES[BaselineName.STEP_BACK]
    agent = "def forward(self, taskInfo):\n    return 'x'\n"
    archive = Archive(run_dir / "archive.jsonl")
    for record in (_record(0, "initial", cot.name, cot.code, 30.0), _record(1, "initial", step_back.name,
                                                                              step_back.code, 45.0),
                   _record(0, 1, "Agent", agent, 60.0)):
        archive.append(record)
    (run_dir / FINAL_DIR).mkdir()
    final = Archive(run_dir / FINAL_DIR / "archive.jsonl")
    final.append(_record(0, "initial", step_back.name, step_back.code, 50.0,
                         {f"q{i}": s for i, s in enumerate(baseline_test)}))
    final.append(_record(1, "initial", "Agent", agent, 50.0, {f"q{i}": s for i, s in enumerate(agent_test)}))
    return run_dir


def test_best_baseline_is_chosen_on_validation(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, [1.0], [1.0])
    from engine.search.archive import load_records

    assert best_baseline(load_records(run_dir)) is BaselineName.STEP_BACK


@pytest.mark.parametrize(("agent", "baseline", "verdict"), [
    ([1.0] * 30, [1.0] * 10 + [0.0] * 20, Verdict.BETTER),
    ([1.0] * 15 + [0.0] * 15, [0.0] * 15 + [1.0] * 15, Verdict.UNCLEAR),
    ([0.0] * 30, [1.0] * 30, Verdict.WORSE),
])
def test_verdict_follows_the_paired_interval(tmp_path: Path, agent: list[float], baseline: list[float],
                                             verdict: Verdict) -> None:
    run_dir = _run(tmp_path, agent, baseline)
    comparison = compare(final_rows(run_dir), resamples=5_000)
    assert comparison is not None and comparison.verdict is verdict and comparison.n == 30
    assert (comparison.agent, comparison.baseline) == ("Agent", "Step-back Abstraction")
    assert verdict.value in lead_html(run_dir, AdasConfig())


def test_lead_says_when_the_test_split_was_not_run(tmp_path: Path) -> None:
    assert "has not run yet" in lead_html(tmp_path, AdasConfig())
    assert "disabled" in lead_html(tmp_path, AdasConfig(final_test={"enabled": False}))
    assert lead_html(tmp_path, AdasConfig(agents_from=str(tmp_path))) == ""  # a transfer report has no such lead
