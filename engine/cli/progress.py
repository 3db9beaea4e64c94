"""The live terminal display of a run: generation, candidates in flight and their stage, best
fitness so far, LLM spend. Fed through the loop's Observer interface."""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from engine.llm.usage import Usage
from engine.search.archive import Generation, Record
from engine.search.candidate import Status
from engine.search.observer import Observer


class RichProgress(Observer):
    """Context manager: `with RichProgress(console) as progress: run_search(..., observer=progress)`."""

    def __init__(self, console: Console):
        self._console = console
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._generations = 0
        self._generation: Generation | None = None
        self._stages: dict[tuple[Generation, int], tuple[str, float]] = {}
        self._done = 0
        self._failed = 0
        self._best: Record | None = None
        self._spend = Usage()
        self._spent_before = Usage()
        self._started = time.monotonic()

    def __enter__(self) -> RichProgress:
        self._live = Live(self, console=self._console, refresh_per_second=4, transient=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live:
            self._live.__exit__(*exc)

    # ---- Observer ------------------------------------------------------------------------
    def run_started(self, generations: int, candidates_per_generation: int, archived: list[Record]) -> None:
        with self._lock:
            self._generations = generations
            for record in archived:
                self._count(record)
                self._spent_before = self._spent_before + record.usage

    def generation_started(self, generation: Generation) -> None:
        with self._lock:
            self._generation = generation

    def stage(self, slot: tuple[Generation, int], stage: str) -> None:
        with self._lock:
            self._stages[slot] = (stage, time.monotonic())

    def candidate_finished(self, record: Record) -> None:
        with self._lock:
            self._stages.pop(record.slot, None)
            self._count(record)

    def spend(self, total: Usage) -> None:
        with self._lock:
            self._spend = total

    def _count(self, record: Record) -> None:
        self._done += 1
        if record.status is not Status.OK:
            self._failed += 1
        elif record.fitness is not None and (self._best is None or record.fitness > (self._best.fitness or 0)):
            self._best = record

    # ---- rendering -----------------------------------------------------------------------
    def __rich__(self) -> Group:
        with self._lock:
            spend = self._spent_before + self._spend
            best = (f"{self._best.fitness:.4g} ({self._best.name})" if self._best and self._best.fitness is not None
                    else "-")
            header = Text.assemble(
                ("generation ", "dim"), f"{self._generation if self._generation is not None else '-'}"
                                        f"/{self._generations}",
                ("  archived ", "dim"), f"{self._done}", ("  failed ", "dim"), f"{self._failed}",
                ("  best ", "dim"), (best, "bold green"),
                ("  LLM ", "dim"), f"${spend.cost_usd:.4f} {spend.total_tokens:,} tok {spend.calls} calls",
                ("  elapsed ", "dim"), f"{time.monotonic() - self._started:.0f}s")
            table = Table(box=None, show_header=bool(self._stages), pad_edge=False)
            table.add_column("candidate")
            table.add_column("stage")
            table.add_column("for", justify="right")
            now = time.monotonic()
            for (generation, index), (stage, since) in sorted(self._stages.items(), key=lambda i: str(i[0])):
                table.add_row(f"{generation}/{index}", stage, f"{now - since:.0f}s")
        return Group(header, table)
