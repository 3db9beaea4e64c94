"""What the loop knows about a candidate: the proposal, its outcome, and the archive record."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import ConfigDict


class Status(str, enum.Enum):
    """Outcome of one candidate. Never encode a failure as a fitness value."""

    OK = "ok"  # evaluated, fitness is a number
    INVALID = "invalid"  # never ran: bad JSON, no code, syntax error, static gate, wrong signature
    FAILED = "failed"  # ran and was wrong: unit test failed, crashed, NaN loss, all-zero accuracy
    TIMEOUT = "timeout"  # killed at its wall-clock limit
    OOM = "oom"  # killed at its memory limit


@dataclass(frozen=True)
class Proposal:
    """What the meta LLM proposed (or a hand-written baseline). Journal entries hold it as a
    field: pydantic validates it there (extra keys refused), as the object of these three fields."""

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    name: str
    thought: str
    code: str


class CandidateFailure(Exception):
    """Raised by a domain when a candidate cannot be scored.

    `reason` is one short line: it goes into the archive and into the repair prompt the LLM sees.
    """

    def __init__(self, status: Status, reason: str, detail: dict[str, Any] | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.detail = detail or {}


@dataclass
class Evaluation:
    """A successful evaluation: the number the search maximises, plus everything behind it."""

    fitness: float
    fitness_text: str  # what the meta LLM reads, e.g. "95% Bootstrap Confidence Interval: (a%, b%), Median: m%"
    detail: dict[str, Any] = field(default_factory=dict)  # per-benchmark numbers, CI, raw per-seed results
