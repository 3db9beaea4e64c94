"""Refusing code the archive already holds.

Deterministic by construction: candidates of generation g are checked against the archive as
it stood when g began (earlier generations), like their prompt. Two candidates of the same
generation that write the same code concurrently are both evaluated; when they are archived,
in candidate order, the later one is recorded as a duplicate of the earlier (no fitness).
"""

from __future__ import annotations

from engine.search.archive import Attempt, Record
from engine.search.candidate import Status


def describe(record: Record) -> str:
    if record.status is Status.OK:
        outcome = f"fitness {record.fitness_text or record.fitness}"
    else:
        outcome = f"{record.status.value}: {record.error}"
    return f"archived candidate {record.name!r} (id {record.id}, {outcome})"


def duplicate_reason(original: str) -> str:
    return f"duplicate: the code is identical (ignoring layout and comments) to {original}"


class Dedupe:
    """Code ids of archived records (records without code, e.g. unreadable replies, are skipped)."""

    def __init__(self, records: list[Record]):
        self._archived: dict[str, str] = {}
        for record in records:
            if record.code_id is not None:
                self._archived.setdefault(record.code_id, describe(record))

    def check(self, code_id: str) -> str | None:
        """Why `code_id` must not be evaluated, or None."""
        original = self._archived.get(code_id)
        return duplicate_reason(original) if original else None


def as_duplicate(record: Record, earlier: list[Record]) -> Record:
    """`record`, or, if an earlier record of its generation has the same code, a copy recorded
    as that record's duplicate (its evaluation ran concurrently and is discarded)."""
    if record.code_id is None:
        return record
    original = next((r for r in earlier if r.code_id == record.code_id), None)
    if original is None:
        return record
    reason = duplicate_reason(f"candidate {original.index} of generation {original.generation}, "
                              f"{original.name!r}, evaluated at the same time")
    return record.model_copy(update={
        "status": Status.INVALID, "fitness": None, "fitness_text": None, "fitness_detail": {}, "error": reason,
        "attempts": [*record.attempts, Attempt(code_id=record.code_id, name=record.name, status=Status.INVALID,
                                               error=reason)]})
