"""What the loop tells a display while it runs. The base class ignores everything, so the loop
runs the same with or without a terminal (tests, background runs)."""

from __future__ import annotations

from engine.llm.usage import Usage
from engine.search.archive import Generation, Record


class Observer:
    """Receives progress from the loop; methods are called from several threads."""

    def run_started(self, generations: int, candidates_per_generation: int, archived: list[Record]) -> None:
        """Before the baselines; `archived` is what an earlier process of this run already did."""

    def generation_started(self, generation: Generation) -> None:
        """A generation (or the baselines, 'initial') begins."""

    def stage(self, slot: tuple[Generation, int], stage: str) -> None:
        """A candidate entered a stage: propose, reflect, check, queue, build, test, evaluate, repair."""

    def candidate_finished(self, record: Record) -> None:
        """A record was appended to the archive."""

    def spend(self, total: Usage) -> None:
        """LLM spend of the run so far, after each meta-LLM call."""

    def run_finished(self, reason: str, detail: str) -> None:
        """The loop returned."""
