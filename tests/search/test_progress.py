from __future__ import annotations

from rich.console import Console

from engine.cli.progress import RichProgress
from engine.llm.usage import Usage
from engine.search.archive import Record
from engine.search.candidate import Status


def test_progress_shows_generation_stages_best_and_spend() -> None:
    console = Console(record=True, width=160, force_terminal=True)
    progress = RichProgress(console)
    done = Record(id="a", name="Good", thought="", code="x", generation="initial", index=0, status=Status.OK,
                  fitness=0.75)
    progress.run_started(3, 2, [done])
    progress.generation_started(2)
    progress.stage((2, 0), "reflect")
    progress.stage((2, 1), "evaluate")
    progress.spend(Usage(calls=4, prompt_tokens=1000, completion_tokens=200, cost_usd=0.0123))
    console.print(progress)
    text = console.export_text()
    assert "generation 2/3" in text and "best 0.75 (Good)" in text
    assert "$0.0123 1,200 tok 4 calls" in text
    assert "2/0" in text and "reflect" in text and "2/1" in text and "evaluate" in text
    progress.candidate_finished(Record(id="b", name="Bad", thought="", code="y", generation=2, index=0,
                                       status=Status.FAILED, error="boom"))
    console.print(progress)
    assert "failed 1" in console.export_text()
