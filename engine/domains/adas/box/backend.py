"""How LLMAgentBase reaches an LLM: the engine's gateway socket, or the stub LLM for unit tests.

Also the ARC tools' runner and the per-question deadline. Settings come from the harness
(`configure`), which reads them from /in/config.json.
"""
from __future__ import annotations

import ast
import copy
import hashlib
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import stub  # relative: the host imports this file as engine.domains.adas.box.backend

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
BUDGET_ERROR_TYPE = "budget_exhausted"  # the gateway's error type once a grant's budget is spent


class QuestionTimeout(Exception):
    """Raised on the next LLM call once a question has used its time."""


class BudgetSpent(BaseException):
    """The candidate's LLM budget is spent: every later call would be refused too. A
    BaseException so that an agent's `except Exception` cannot swallow it and loop on."""


class ContextTooLong(AssertionError):
    """The prompt exceeded the model's context; the message is advice for the meta agent."""


class TransformError(Exception):
    """ARC: the agent's `transform` code did not load, raised, or returned no grid. The message is
    the tools' feedback text."""


@dataclass
class Settings:
    answer_hint: str = "Your answer."
    benchmark: str = "mgsm"  # picks the stub's answers and, for 'arc', the code field and tools
    stub_shape: stub.Shape | None = stub.Shape.TYPICAL  # None: the gateway; else every call is stubbed, free
    max_tokens: int = 1024
    field_hints: dict[str, str] = field(default_factory=lambda: {
        "thinking": "Your step-by-step thinking.",
    })

    @property
    def arc(self) -> bool:
        return self.benchmark == "arc"


CODE_HINT = ("Python code defining `def transform(grid)` that returns the output grid (list of lists of int). "
             "Only the function: it is tested on the examples.")
settings = Settings()
stub_calls = 0
_lock = threading.Lock()
_local = threading.local()


def configure(new: Settings) -> None:
    global settings
    settings = new


def use_stub(shape: stub.Shape) -> None:
    """Answer every later call with this shape of stub replies (the unit test's second try)."""
    settings.stub_shape = shape


def start_question(question_id: str, deadline: float | None) -> None:
    """Bind this thread to a question: its LLM calls raise QuestionTimeout after `deadline`
    (monotonic) and get per-call seeds derived from the question id (see _seed)."""
    _local.question, _local.calls, _local.deadline, _local.tool_error = question_id, 0, deadline, None


def describe_field(name: str) -> str:
    """As in the paper: a field named like 'answer' gets the benchmark's answer format, and on
    ARC one named like 'code' asks for the transform function."""
    if "answer" in name:
        return settings.answer_hint
    if settings.arc and "code" in name:
        return CODE_HINT
    return settings.field_hints.get(name, f"Your {name}.")


def _check_deadline() -> None:
    deadline = getattr(_local, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise QuestionTimeout("question timed out")


def _seed() -> int:
    """Distinct per call of a question (self-consistency samples differ even through a response
    cache) yet the same on a rerun; random for calls from threads the agent starts itself."""
    question = getattr(_local, "question", None)
    if question is None:
        return random.randrange(2**31)
    _local.calls += 1
    return int(hashlib.sha256(f"{question}:{_local.calls}".encode()).hexdigest()[:8], 16)


def ask_json(system: str, prompt: str, fields: list[str], temperature: float) -> dict[str, Any]:
    """One LLM call in JSON mode, parsed leniently."""
    _check_deadline()
    seed = _seed()
    if settings.stub_shape is not None:
        return _stub_reply(fields, settings.stub_shape)
    text = _gateway_chat(system, prompt, temperature, seed)
    return parse_json(text, fields)


def _stub_reply(fields: list[str], shape: stub.Shape) -> dict[str, Any]:
    global stub_calls
    with _lock:
        stub_calls += 1
    return stub.reply(fields, settings.benchmark, shape)


def warm_up() -> None:
    """Import the gateway client (and httpx) once, before the question threads start: otherwise
    every thread of the first wave queues on the import lock inside its first call."""
    import evobox_llm  # noqa: F401  (copied into the image by the engine)


def _gateway_chat(system: str, prompt: str, temperature: float, seed: int) -> str:
    import evobox_llm  # copied into the image by the engine; plain httpx, no openai import

    try:
        reply = evobox_llm.chat({
            "temperature": temperature, "max_tokens": settings.max_tokens, "seed": seed,
            "response_format": {"type": "json_object"},
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}]})
    except evobox_llm.ChatError as exc:
        if exc.status == 400 and exc.code == "context_length_exceeded":
            raise ContextTooLong("The context is too long for the model: "
                                 "design the agent to send shorter inputs.") from exc
        if exc.status == 429 and exc.type == BUDGET_ERROR_TYPE:
            raise BudgetSpent(exc.message or "LLM budget spent") from None
        raise
    return reply["choices"][0]["message"]["content"] or ""


def parse_json(text: str, fields: list[str]) -> dict[str, Any]:
    """A JSON object from the reply, tolerating code fences, prose around it and Python literals.

    A reply with no object at all becomes the content of the last field (usually 'answer').
    """
    cleaned = _FENCE.sub("", text.strip())
    start, end = cleaned.find("{"), cleaned.rfind("}")
    candidates = [cleaned, cleaned[start:end + 1]] if 0 <= start < end else [cleaned]
    for candidate in candidates:
        for parse in (json.loads, ast.literal_eval):
            try:
                value = parse(candidate)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
            if isinstance(value, dict):
                return {str(k): v for k, v in value.items()}
    return {fields[-1]: text.strip()} if fields and text.strip() else {}


# ---- ARC tools ------------------------------------------------------------------------------
# The paper's semantics: the code is exec'd, `transform` is taken from it and called on grids;
# feedback is text in the paper's words; the test output is the grid as text ("[[1,2],[3,4]]").
# One deliberate difference: code that does not load counts every example as wrong (the paper
# returned no correct and no wrong example, so "no wrong examples" could mean "broken code").
def grid_text(grid: list[list[int]]) -> str:
    """The paper's compact grid text, which its scorer (and ours) parses back."""
    return json.dumps(grid, separators=(",", ":"))


def as_grid(value: Any) -> list[list[int]] | None:
    """A list of int rows from what transform returned (numpy arrays, tuples), else None."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not value:
        return None
    try:
        return [[int(cell) for cell in row] for row in value]
    except (TypeError, ValueError, OverflowError):
        return None


def load_transform(code: str) -> Callable[[Any], Any]:
    namespace: dict[str, Any] = {"__name__": "transform_code"}
    try:
        exec(_FENCE.sub("", code.strip()), namespace)  # inside the candidate's own sandbox only
    except (QuestionTimeout, BudgetSpent):
        raise
    except Exception as exc:  # the agent's code: any error is feedback, not a crash
        raise TransformError(f"Error during code execution: {type(exc).__name__}: {exc}") from None
    transform = namespace.get("transform")
    if not callable(transform):
        raise TransformError("Function 'transform' not found in the code.")
    return transform


def apply_transform(transform: Callable[[Any], Any], grid: list[list[int]]) -> Any:
    """transform's raw output on a copy of the grid (so it cannot alter the examples)."""
    try:
        return transform(copy.deepcopy(grid))
    except (QuestionTimeout, BudgetSpent):
        raise
    except Exception as exc:
        raise TransformError(f"Error during function execution: {type(exc).__name__}: {exc}") from None


def _shown(value: Any) -> str:
    grid = as_grid(value)
    return grid_text(grid) if grid is not None else repr(value)[:300]


def examples_feedback(code: str, examples: list[dict[str, Any]]) -> tuple[str, list, list]:
    """Run transform on every training pair: (feedback text, correct examples, wrong examples)."""
    try:
        transform = load_transform(code)
    except TransformError as exc:
        return str(exc), [], list(examples)
    parts, correct, wrong = [], [], []
    for i, example in enumerate(examples, start=1):
        try:
            output = apply_transform(transform, example["input"])
        except TransformError as exc:
            wrong.append(example)
            parts.append(f"{exc} (Example {i})")
            continue
        if as_grid(output) == example["output"]:
            correct.append(example)
            parts.append(f"Your transform function generates a CORRECT answer in Example {i}!")
        else:
            wrong.append(example)
            parts.append(f"Your transform function generates a WRONG answer in Example {i}!\n"
                         f"Expect: {grid_text(example['output'])}\nYou got: {_shown(output)}\n"
                         f"Observe the Example {i} carefully!")
    return "\n\n".join(parts), correct, wrong


def test_output(code: str, grid: list[list[int]]) -> str:
    """The test answer as grid text, or the error text (remembered as the question's tool error,
    so that a wrong answer says why in the evaluation's failure reasons)."""
    try:
        output = apply_transform(load_transform(code), grid)
        result = as_grid(output)
        if result is None:
            raise TransformError(f"Error during function execution: transform returned {_shown(output)[:80]}, "
                                 "not a grid (list of lists of int)")
    except TransformError as exc:
        _local.tool_error = str(exc)
        return str(exc)
    return grid_text(result)


def tool_error() -> str | None:
    """The last error text get_test_output_from_code returned on this question's thread."""
    return getattr(_local, "tool_error", None)
