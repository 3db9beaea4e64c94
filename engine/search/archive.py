"""The archive: one JSON object per candidate in `archive.jsonl`, append-only.

Each record is written, flushed and fsync'd before the loop takes its next step, so a crash
loses at most the line being written; a torn last line (SIGKILL mid-write) is cut off when the
archive is opened again. The file is never rewritten in place.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine.llm.usage import Usage
from engine.search.candidate import Evaluation, Proposal, Status
from engine.search.codeid import code_id, record_id

log = structlog.get_logger()

Generation = Literal["initial"] | int


class Attempt(BaseModel):
    """One try at a candidate: the first proposal or one repair. The repair history."""

    model_config = ConfigDict(extra="forbid")

    code_id: str | None
    name: str | None = None
    status: Status
    error: str | None = None
    seconds: float = 0.0


class Record(BaseModel):
    """One archived candidate: scored or failed, never both."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="unique per record: codeid.record_id(generation, index, code)")
    code_id: str | None = Field(None, description="content hash of the normalised code (dedupe, the "
                                                  "candidates/<code_id>/ directory); None without code")
    name: str
    thought: str
    code: str
    generation: Generation
    index: int = Field(description="position of the candidate within its generation")
    parents: list[str] = Field(default_factory=list, description="ids of the records shown in its prompt")
    status: Status
    fitness: float | None = None
    fitness_text: str | None = None
    fitness_detail: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    usage: Usage = Field(default_factory=Usage, description="meta-LLM spend of its proposals and repairs")
    agent_usage: Usage = Field(default_factory=Usage, description="gateway spend of its evaluations (agents, judge)")
    timings: dict[str, float] = Field(default_factory=dict)
    attempts: list[Attempt] = Field(default_factory=list)
    cached: bool = Field(False, description="baseline evaluation reused from the cache")

    @classmethod
    def settle(cls, generation: Generation, index: int, proposal: Proposal | None, attempt: Attempt,
               evaluation: Evaluation | None, *, cid: str | None = None, **spend: Any) -> Record:
        """The one way a candidate becomes a record: its slot, the proposal it ends with (None: no
        reply held one), the last attempt's outcome, the evaluation when that attempt was ok, and
        `spend` (parents, usage, agent_usage, timings, attempts, cached). `cid`: the code's id
        when already known, else derived from the code."""
        code = proposal.code if proposal else ""
        return cls(id=record_id(generation, index, code, cid=cid), code_id=cid,
                   name=proposal.name if proposal else "unnamed", thought=proposal.thought if proposal else "",
                   code=code, generation=generation, index=index, status=attempt.status,
                   fitness=evaluation.fitness if evaluation else None,
                   fitness_text=evaluation.fitness_text if evaluation else None,
                   fitness_detail=evaluation.detail if evaluation else {}, error=attempt.error, **spend)

    @property
    def slot(self) -> tuple[Generation, int]:
        return (self.generation, self.index)

    @model_validator(mode="after")
    def _derive_code_id(self) -> "Record":
        """Filled from the code when not given (records written before code_id existed included)."""
        if self.code_id is None and self.code.strip():
            self.code_id = code_id(self.code)
        return self


class ArchiveCorrupt(Exception):
    """A line other than the last one cannot be read: refuse to guess."""


class Archive:
    """Append-only, fsync'd JSONL archive. Thread-safe."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._records: list[Record] = _load(path)

    @property
    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def slots(self) -> set[tuple[Generation, int]]:
        with self._lock:
            return {record.slot for record in self._records}

    def append(self, record: Record) -> None:
        """Write one record and make it durable before returning."""
        line = record.model_dump_json() + "\n"
        with self._lock:
            if record.slot in {r.slot for r in self._records}:
                raise ValueError(f"slot {record.slot} is already archived")
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                _append_whole(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
            self._records.append(record)


def _append_whole(fd: int, data: bytes) -> None:
    """Write all of `data` and fsync. os.write may write less than asked (a full disk, a file
    size limit); then the rest is written, and if that fails the partial line is cut off again,
    so the archive never holds half a record that a later append would glue onto."""
    start = os.fstat(fd).st_size
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.ftruncate(fd, start)
        os.fsync(fd)
        raise


def _load(path: Path, *, repair: bool = True) -> list[Record]:
    """Read the archive; with `repair`, cut off a torn last line so that later appends stay
    valid JSONL (readers such as reports ignore it instead: the writer may be mid-line)."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    records: list[Record] = []
    offset = 0
    for number, raw in enumerate(lines, start=1):
        is_last = number == len(lines)
        if raw.strip():
            try:
                records.append(Record.model_validate(json.loads(raw)))
            except (ValueError, ValidationError) as exc:
                if not is_last and any(rest.strip() for rest in lines[number:]):
                    raise ArchiveCorrupt(f"{path}:{number}: unreadable record ({exc})") from exc
                if repair:
                    log.warning("archive_torn_line_dropped", path=str(path), line=number, bytes=len(raw))
                    _truncate(path, offset)
                break
            if is_last and repair:  # complete record whose newline was not written
                _append_newline(path)
        offset += len(raw) + 1
    return records


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(size)
        handle.flush()
        os.fsync(handle.fileno())


def _append_newline(path: Path) -> None:
    with open(path, "ab") as handle:
        handle.write(b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def load_records(run_dir: Path) -> list[Record]:
    """The archived records of a run directory (read-only use: reports, `archive show`)."""
    return _load(run_dir / ARCHIVE_NAME, repair=False)


ARCHIVE_NAME = "archive.jsonl"
