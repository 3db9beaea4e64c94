"""Every dollar and token of a run in one place: the meta LLM's and the agents' (ADAS agents,
DiscoPOP's judge: every call through the gateway), failed and unfinished candidates included.

Meta spend is counted as before: what the archive and journal recorded for earlier processes,
plus this process's client totals. Agent spend is counted by the gateway after each call (the
`SpendHook` it is handed) and persisted at once to `agent_spend.json`, so a resumed run counts
what earlier processes' agents spent, whether or not their candidates were ever archived.

The run budget ([llm] budget_usd / budget_tokens) covers the sum. Once it is reached the
gateway refuses new agent calls (the evaluation in flight is cut short and stays pending) and
`on_spent` asks the loop to stop.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import structlog

from engine.atomic import write_json_atomic
from engine.llm.usage import Budget, Usage
from engine.search.archive import Record

log = structlog.get_logger()

AGENT_SPEND_NAME = "agent_spend.json"


def agent_spend_of(run_dir: Path) -> Usage:
    """What the agents of every process of this run spent (0 for runs without the file)."""
    path = run_dir / AGENT_SPEND_NAME
    try:
        return Usage.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return Usage()
    except (OSError, ValueError) as exc:  # written atomically, so only a bug or a hand edit gets here
        log.warning("spend.agent_file_unreadable", path=str(path), error=str(exc))
        return Usage()


def spend_summary(run_dir: Path, records: list[Record]) -> tuple[Usage, Usage]:
    """(meta, agents) spend of a run for reports: meta as archived; agents from the ledger, which
    also holds what unfinished evaluations and earlier processes spent (the archive's sum for
    runs older than the ledger)."""
    meta, archived_agents = Usage(), Usage()
    for record in records:
        meta, archived_agents = meta + record.usage, archived_agents + record.agent_usage
    ledger = agent_spend_of(run_dir)
    return meta, ledger if ledger.calls >= archived_agents.calls else archived_agents


class RunSpend:
    """The run's spend and budget; thread-safe (the gateway records from its own thread)."""

    def __init__(self, run_dir: Path, budget: Budget):
        self._path = run_dir / AGENT_SPEND_NAME
        self._budget = budget
        self._lock = threading.Lock()
        self._agent = agent_spend_of(run_dir)
        self._by_candidate: dict[str, Usage] = {}
        self._meta_before = Usage()
        self._meta_now: Callable[[], Usage] = Usage
        self.on_spent: Callable[[str], None] = lambda reason: None

    def set_meta(self, before: Usage, now: Callable[[], Usage]) -> None:
        """Meta spend: recorded by earlier processes, and this process's running total."""
        self._meta_before, self._meta_now = before, now

    @property
    def meta(self) -> Usage:
        return self._meta_before + self._meta_now()

    @property
    def agent(self) -> Usage:
        with self._lock:
            return self._agent

    def total(self) -> Usage:
        return self.meta + self.agent

    def exceeded(self) -> str | None:
        """The run budget's one-line reason once the whole spend reaches it, else None."""
        return self._budget.exceeded(self.total())

    def agent_of(self, candidate_id: str) -> Usage:
        """Agent spend of one candidate's grants in this process."""
        with self._lock:
            return self._by_candidate.get(candidate_id, Usage())

    # ---- the gateway's SpendHook ------------------------------------------------------------
    def refusal(self) -> str | None:
        return self.exceeded()

    def record(self, candidate_id: str, usage: Usage) -> None:
        with self._lock:
            self._agent = self._agent + usage
            self._by_candidate[candidate_id] = self._by_candidate.get(candidate_id, Usage()) + usage
            write_json_atomic(self._path, self._agent.to_json())
        reason = self.exceeded()
        if reason:
            self.on_spent(reason)
