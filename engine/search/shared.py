"""One evaluation per code within a generation.

Candidates of a generation run concurrently and may write the same code. The first to get
there evaluates it; the others wait for that outcome and use it as their own, so the result
does not depend on timing and no evaluation is repeated. (At archive time the later ones are
recorded as duplicates: see dedupe.as_duplicate.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.search.candidate import Evaluation


@dataclass
class _Outcome:
    done: threading.Event = field(default_factory=threading.Event)
    evaluation: Evaluation | None = None
    error: BaseException | None = None


class SharedEvaluations:
    """Per-generation map code id -> outcome of its one evaluation. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outcomes: dict[str, _Outcome] = {}

    def run(self, code_id: str, evaluate: Callable[[], Evaluation], wait: Callable[[], None]) -> Evaluation:
        """`evaluate()` if no other candidate is evaluating `code_id`; else call `wait()` (a stage
        report) and return (or raise) that candidate's outcome."""
        with self._lock:
            outcome = self._outcomes.get(code_id)
            owner = outcome is None
            if owner:
                outcome = self._outcomes[code_id] = _Outcome()
        assert outcome is not None
        if owner:
            try:
                outcome.evaluation = evaluate()
            except BaseException as exc:  # handed to the waiters, then re-raised here unchanged
                outcome.error = exc
                raise
            finally:
                outcome.done.set()
            return outcome.evaluation
        wait()
        outcome.done.wait()
        if outcome.error is not None:
            raise outcome.error
        assert outcome.evaluation is not None
        return outcome.evaluation
