"""How LLMAgentBase reaches an LLM: the engine's gateway socket, or a stub for unit tests.

Also the ARC tools' runner and the per-question deadline. Settings come from the harness
(`configure`), which reads them from /in/config.json.
"""
from __future__ import annotations

import ast
import hashlib
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
STUB_CODE = "def transform(grid):\n    return [list(row) for row in grid]\n"


class QuestionTimeout(Exception):
    """Raised on the next LLM call once a question has used its time."""


class ContextTooLong(AssertionError):
    """The prompt exceeded the model's context; the message is advice for the meta agent."""


@dataclass
class Settings:
    answer_hint: str = "Your answer."
    stub: bool = True  # no gateway: every call is answered locally, at no cost
    stub_answer: Any = "0"
    max_tokens: int = 1024
    field_hints: dict[str, str] = field(default_factory=lambda: {
        "thinking": "Your step-by-step thinking.",
        "code": "Python code defining `def transform(grid)` that returns the output grid (list of lists of int).",
    })


settings = Settings()
stub_calls = 0
_lock = threading.Lock()
_local = threading.local()
_client = None


def configure(new: Settings) -> None:
    global settings
    settings = new


def start_question(question_id: str, deadline: float | None) -> None:
    """Bind this thread to a question: its LLM calls raise QuestionTimeout after `deadline`
    (monotonic) and get per-call seeds derived from the question id (see _seed)."""
    _local.question, _local.calls, _local.deadline = question_id, 0, deadline


def describe_field(name: str) -> str:
    if "answer" in name:
        return settings.answer_hint
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
    if settings.stub:
        return _stub_reply(fields)
    text = _gateway_chat(system, prompt, temperature, seed)
    return parse_json(text, fields)


def _stub_reply(fields: list[str]) -> dict[str, Any]:
    global stub_calls
    with _lock:
        stub_calls += 1
    reply = {}
    for name in fields:
        if "answer" in name:
            reply[name] = settings.stub_answer
        elif name == "code":
            reply[name] = STUB_CODE
        else:
            reply[name] = f"(stub {name})"
    return reply


def _gateway_chat(system: str, prompt: str, temperature: float, seed: int) -> str:
    global _client
    import evobox_llm  # copied into the image by the engine
    import openai

    with _lock:
        if _client is None:
            _client = evobox_llm.client()
    try:
        reply = _client.chat.completions.create(
            model=evobox_llm.MODEL, temperature=temperature, max_tokens=settings.max_tokens, seed=seed,
            response_format={"type": "json_object"},
            messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}])
    except openai.BadRequestError as exc:
        if getattr(exc, "code", None) == "context_length_exceeded":
            raise ContextTooLong("The context is too long for the model: "
                                 "design the agent to send shorter inputs.") from exc
        raise
    return reply.choices[0].message.content or ""


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
def _strip_fences(code: str) -> str:
    return _FENCE.sub("", str(code).strip())


def run_transform(code: str, grid: Any) -> Any:
    """Output grid of `transform(grid)` from the code, or an error message string."""
    namespace: dict[str, Any] = {}
    try:
        exec(_strip_fences(code), namespace)  # inside the candidate's own sandbox only
        transform = namespace.get("transform")
        if not callable(transform):
            return "Error: the code must define a function `transform(grid)`"
        output = transform([list(row) for row in grid])
        if hasattr(output, "tolist"):
            output = output.tolist()
        return output
    except QuestionTimeout:
        raise
    except Exception as exc:  # the agent's code: any error is feedback, not a crash
        return f"Error: {type(exc).__name__}: {exc}"


def examples_feedback(info_type: Any, code: str, examples: list[dict[str, Any]]) -> tuple[Any, list, list]:
    """Run transform on every training pair; returns (feedback Info, correct, wrong)."""
    lines, correct, wrong = [], [], []
    for i, example in enumerate(examples, start=1):
        output = run_transform(code, example["input"])
        if output == example["output"]:
            correct.append(example)
            lines.append(f"Example {i}: correct.")
        else:
            wrong.append(example)
            lines.append(f"Example {i}: wrong. Input {example['input']}, expected {example['output']}, got {output}.")
    return info_type("feedback", "Environment", "\n".join(lines), -1), correct, wrong
