"""Refusing code the archive already holds, or that another candidate is evaluating right now."""

from __future__ import annotations

import threading

from engine.search.archive import Generation, Record
from engine.search.candidate import Status


def _describe(record: Record) -> str:
    if record.status is Status.OK:
        outcome = f"fitness {record.fitness_text or record.fitness}"
    else:
        outcome = f"{record.status.value}: {record.error}"
    return f"archived candidate {record.name!r} (id {record.id}, {outcome})"


class Dedupe:
    """Index of archived code ids plus the ids claimed by candidates in flight. Thread-safe."""

    def __init__(self, records: list[Record]):
        self._lock = threading.Lock()
        self._archived: dict[str, str] = {}
        self._claims: dict[str, tuple[Generation, int]] = {}
        for record in records:
            self.add(record)

    def add(self, record: Record) -> None:
        """Index an archived record (records without code, e.g. unreadable replies, are skipped)."""
        if record.code.strip():
            with self._lock:
                self._archived.setdefault(record.id, _describe(record))

    def claim(self, code_id: str, slot: tuple[Generation, int]) -> str | None:
        """Reserve `code_id` for `slot`; return why it is a duplicate instead, if it is one.

        Candidates of one generation run concurrently, so the first to reach this point owns
        the code; the other is told it duplicates a candidate under evaluation.
        """
        with self._lock:
            if code_id in self._archived:
                return f"duplicate: the code is identical (ignoring layout and comments) to {self._archived[code_id]}"
            owner = self._claims.setdefault(code_id, slot)
            if owner != slot:
                return ("duplicate: the code is identical (ignoring layout and comments) to candidate "
                        f"{owner[1]} of generation {owner[0]}, which is being evaluated now")
            return None
