"""One benchmark item as the engine holds it: what the agent may see, and the gold answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Task:
    """A question with its gold answer.

    `question` is the text the agent receives as taskInfo.content; `inputs` holds structured
    public data (ARC: training pairs and the test input). `gold` never leaves the engine.
    """

    id: str
    question: str
    gold: Any
    inputs: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """The part sent into the candidate's container: no gold answer."""
        return {"id": self.id, "question": self.question, "inputs": self.inputs}
