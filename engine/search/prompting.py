"""The archive as the meta LLM reads it, as in the papers: a JSON list of
{thought, name, code, fitness} with fitness as text.

Long runs outgrow any context window, so the shown part is capped in characters. Entries are
chosen best first and most recent first, alternately, until the cap; they are then shown in
archive order so the model still sees how the search progressed.
"""

from __future__ import annotations

import json

from engine.search.archive import Record
from engine.search.candidate import Status


def entry(record: Record) -> dict[str, str]:
    """One archive entry as shown to the meta LLM."""
    return {"thought": record.thought, "name": record.name, "code": record.code,
            "fitness": record.fitness_text or (f"{record.fitness:g}" if record.fitness is not None else "")}


def select(records: list[Record], cap_chars: int) -> list[Record]:
    """The scored records that fit in `cap_chars`, best and most recent first, in archive order."""
    scored = [r for r in records if r.status is Status.OK and r.fitness is not None]
    by_fitness = sorted(scored, key=lambda r: r.fitness, reverse=True)  # type: ignore[arg-type, return-value]
    by_recency = list(reversed(scored))
    chosen: dict[int, Record] = {}
    used = 4  # "[\n" and "\n]"
    for best, recent in zip(by_fitness, by_recency):
        for record in (best, recent):
            if id(record) in chosen:
                continue
            size = len(json.dumps([entry(record)], indent=2)) - 4 + 2  # as nested in the list, plus ",\n"
            if used + size > cap_chars:
                continue
            chosen[id(record)] = record
            used += size
    return [r for r in scored if id(r) in chosen]


def as_text(shown: list[Record]) -> str:
    """The chosen records as JSON text, ready for Domain.proposal_prompt."""
    return json.dumps([entry(r) for r in shown], indent=2)
