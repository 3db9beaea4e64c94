"""Why a run stops, and the one flag every thread of the loop checks before its next step."""

from __future__ import annotations

import enum
import threading
import time

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.search.spend import RunSpend


class StopReason(str, enum.Enum):
    """How a run ended. Everything but ERROR is a clean end: the archive holds all finished work."""

    COMPLETED = "completed"  # every generation is done
    WALL_TIME = "wall_time"  # [search] wall_time_s spent
    LLM_BUDGET = "llm_budget"  # [llm] budget_usd or budget_tokens spent (meta and agents together)
    INTERRUPTED = "interrupted"  # SIGINT / Ctrl-C
    ERROR = "error"  # the environment broke (docker, LLM server): resume once it is fixed


class Stopped(Exception):
    """Raised at a step boundary once a stop was requested; the candidate stays in the journal."""


class Stopper:
    """Thread-safe stop request; the first reason wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: StopReason | None = None
        self.detail = ""

    def request(self, reason: StopReason, detail: str = "") -> None:
        with self._lock:
            if self._reason is None:
                self._reason, self.detail = reason, detail

    @property
    def reason(self) -> StopReason | None:
        with self._lock:
            return self._reason


class Limits:
    """The run's budgets, counted over the whole run, earlier processes included: wall time
    (seconds recorded by earlier processes plus this one's) and LLM spend of every role
    (engine.search.spend)."""

    def __init__(self, wall_time_s: float | None, spend: RunSpend, elapsed_before_s: float = 0.0):
        self._started = time.monotonic()
        self._wall_time_s = wall_time_s
        self._spend = spend
        self._elapsed_before_s = elapsed_before_s

    def elapsed_s(self) -> float:
        """Wall time of the whole run so far."""
        return self._elapsed_before_s + time.monotonic() - self._started

    def exceeded(self) -> tuple[StopReason, str] | None:
        """The first budget spent, with a one-line explanation, or None."""
        if self._wall_time_s is not None and self.elapsed_s() >= self._wall_time_s:
            return StopReason.WALL_TIME, f"wall-time budget of {self._wall_time_s:g}s spent"
        reason = self._spend.exceeded()
        if reason:
            return StopReason.LLM_BUDGET, reason
        return None
