"""The journal of unfinished candidates: what makes a SIGKILL at any moment resumable.

Each in-flight candidate has `pending/<generation>-<index>.json`, rewritten atomically after
every LLM reply and every finished attempt. It holds the conversation, the proposal about to
be evaluated, the repair history and, once the candidate is done, its final record (kept until
the record is in the archive, since records are appended in candidate order). Resuming reads
it back: replies already received are not asked for again, an evaluation that was killed is
run once more, and a finished record is appended in its turn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.atomic import fsync_dir, write_json_atomic
from engine.llm.usage import Usage
from engine.search.archive import Attempt, Generation, Record
from engine.search.candidate import Proposal

log = structlog.get_logger()


class CandidateState(BaseModel):
    """Everything needed to continue one candidate after a crash."""

    model_config = ConfigDict(extra="forbid")

    generation: Generation
    index: int
    parents: list[str] = Field(default_factory=list)
    messages: list[dict[str, Any]] = Field(default_factory=list)
    reflections_done: int = 0
    proposal: Proposal | None = Field(None, description="the proposal the next attempt checks")
    last_proposal: Proposal | None = Field(None, description="the newest proposal that had code")
    reply_error: str | None = Field(None, description="why the last reply gave no usable proposal")
    attempts: list[Attempt] = Field(default_factory=list)
    repair_due: bool = Field(False, description="the last attempt failed: next step is a repair turn")
    usage: Usage = Field(default_factory=Usage)
    agent_usage: Usage = Field(default_factory=Usage)
    timings: dict[str, float] = Field(default_factory=dict)
    final: Record | None = None

    @property
    def slot(self) -> tuple[Generation, int]:
        return (self.generation, self.index)


class Journal:
    """Directory of pending candidate states."""

    def __init__(self, run_dir: Path):
        self.dir = run_dir / "pending"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, slot: tuple[Generation, int]) -> Path:
        return self.dir / f"{slot[0]}-{slot[1]}.json"

    def save(self, state: CandidateState) -> None:
        write_json_atomic(self._path(state.slot), state.model_dump(mode="json"))

    def load(self, slot: tuple[Generation, int]) -> CandidateState | None:
        path = self._path(slot)
        if not path.exists():
            return None
        try:
            return CandidateState.model_validate(json.loads(path.read_text()))
        except (ValueError, ValidationError) as exc:  # written atomically, so only a bug gets here
            log.warning("journal_entry_unreadable", path=str(path), error=str(exc))
            return None

    def remove(self, slot: tuple[Generation, int]) -> None:
        self._path(slot).unlink(missing_ok=True)
        fsync_dir(self.dir)

    def slots(self) -> list[tuple[Generation, int]]:
        """Slots with a journal entry, e.g. to drop those already archived."""
        found = []
        for path in self.dir.glob("*.json"):
            generation, _, index = path.stem.rpartition("-")
            found.append((generation if generation == "initial" else int(generation), int(index)))
        return found
