"""The unit test's stub LLM: a plausible value for every field an agent asks for, in two shapes.

The unit test must catch broken agents, not agents that the stub breaks. A real LLM answers a
confidence with a number, a multiple-choice question with one of its letters and ARC's code
field with a `transform` function, and agents written for the paper rely on that
(`float(confidence.content)`, votes kept only when a verifier says 'True'). So each field gets a
value of the kind its name asks for, read from the name as the paper's framework does for its
'answer' and 'code' fields.

Two shapes, because no single reply is right for every agent: TYPICAL sends strings (what
JSON-mode models mostly send); OTHER sends JSON numbers, another option, fenced numpy code, the
opposite verdict and free text that states an answer. The harness reruns a crashed sample with
OTHER and fails the agent only if it crashes the same way again (see harness.selftest).
"""
from __future__ import annotations

import enum
from typing import Any


class Shape(str, enum.Enum):
    TYPICAL = "typical"
    OTHER = "other"


class Kind(enum.Enum):
    """What a field asks for, judged from its name (first match wins, in this order)."""

    ANSWER = "answer"
    CODE = "code"
    FRACTION = "fraction"
    SCALE = "scale"
    VERDICT = "verdict"
    TEXT = "text"


_WORDS: tuple[tuple[Kind, tuple[str, ...]], ...] = (
    (Kind.ANSWER, ("answer",)),
    (Kind.CODE, ("code",)),
    (Kind.FRACTION, ("confidence", "probability", "certainty", "likelihood", "weight")),
    (Kind.SCALE, ("score", "rating", "grade", "count", "number", "num_")),
    (Kind.VERDICT, ("correct", "valid", "verified", "consistent", "agree", "is_", "passed", "solved")),
)

# Per benchmark: (TYPICAL, OTHER) answers in the format its answer hint asks for.
ANSWERS: dict[str, tuple[Any, Any]] = {
    "mgsm": ("12", 7),
    "drop": ("4", "the Eagles"),
    "mmlu": ("A", "C"),
    "gpqa": ("B", "D"),
    "arc": ("[[0,0],[0,0]]", [[1]]),
}

_CODE = {
    Shape.TYPICAL: "def transform(grid):\n    return [list(row) for row in grid]\n",
    Shape.OTHER: "```python\nimport numpy as np\n\n\ndef transform(grid):\n    return np.array(grid).tolist()\n```",
}
_VALUES: dict[Kind, dict[Shape, Any]] = {
    Kind.FRACTION: {Shape.TYPICAL: "0.8", Shape.OTHER: 0.9},
    Kind.SCALE: {Shape.TYPICAL: "8", Shape.OTHER: 7},
    Kind.VERDICT: {Shape.TYPICAL: "True", Shape.OTHER: "False"},
}


def kind_of(field: str) -> Kind:
    name = field.lower()
    return next((kind for kind, words in _WORDS if any(word in name for word in words)), Kind.TEXT)


def answer(benchmark: str, shape: Shape) -> Any:
    typical, other = ANSWERS.get(benchmark, ANSWERS["drop"])
    return typical if shape is Shape.TYPICAL else other


def value(field: str, benchmark: str, shape: Shape) -> Any:
    """The stub's reply for one field."""
    kind = kind_of(field)
    if kind is Kind.ANSWER:
        return answer(benchmark, shape)
    if kind is Kind.CODE:
        return _CODE[shape]
    if kind in _VALUES:
        return _VALUES[kind][shape]
    if shape is Shape.TYPICAL:
        return f"A short {field} from the stub LLM."
    return f"Thinking it over step by step, the answer is {answer(benchmark, shape)}."


def reply(fields: list[str], benchmark: str, shape: Shape) -> dict[str, Any]:
    return {name: value(name, benchmark, shape) for name in fields}
