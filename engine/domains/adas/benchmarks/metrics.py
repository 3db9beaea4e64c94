"""Per-question scores in [0, 1]. They run in the engine, never inside a candidate's container.

Answers come from untrusted agents: every scorer accepts any JSON value and scores junk as 0.
"""

from __future__ import annotations

import ast
import json
import re
import string
from typing import Any

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CHOICE_PATTERNS = [
    re.compile(r"^\(?([A-D])\)?[.:)]?$"),  # "B", "(B)", "B.", "B)"
    re.compile(r"answer(?: is)?\s*[:\-]?\s*\(?([A-D])\b", re.IGNORECASE),
    re.compile(r"\(([A-D])\)"),
    re.compile(r"\b([A-D])\b"),
]


def as_text(answer: Any) -> str:
    """The answer as one string (agents may return numbers, lists or dicts)."""
    if answer is None:
        return ""
    if isinstance(answer, str):
        return answer
    return json.dumps(answer) if isinstance(answer, (list, dict)) else str(answer)


# ---- MGSM / GSM-style ----------------------------------------------------------------------
def parse_number(answer: Any) -> float | None:
    """The last number in the answer ('1,234' -> 1234; '18 dollars' -> 18), or None."""
    matches = _NUMBER.findall(as_text(answer).replace(",", ""))
    return float(matches[-1]) if matches else None


def numeric_match(answer: Any, gold: float) -> float:
    """1.0 when the answer's number equals the gold number, else 0.0."""
    value = parse_number(answer)
    return float(value is not None and abs(value - float(gold)) < 1e-6)


# ---- DROP ----------------------------------------------------------------------------------
def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _normalize_token(token: str) -> str:
    token = token.lower()
    if not _is_number(token):
        token = "".join(ch for ch in token if ch not in string.punctuation)
    if _is_number(token):
        token = str(float(token))
    return " ".join(_ARTICLES.sub(" ", token).split())


def drop_bag(text: str) -> set[str]:
    """DROP's bag of normalised tokens: split on spaces and hyphens, numbers as floats."""
    tokens = (_normalize_token(tok) for tok in re.split(r"[ \-]", text))
    return {tok for tok in tokens if tok}


def _f1_one(predicted: set[str], gold: set[str]) -> float:
    gold_numbers = {tok for tok in gold if _is_number(tok)}
    if gold_numbers and not gold_numbers & predicted:
        return 0.0  # a numeric answer with the wrong number gets no credit for the words around it
    common = len(predicted & gold)
    if not predicted or not gold or not common:
        return float(predicted == gold)
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def drop_f1(answer: Any, gold: str) -> float:
    """Bag-of-tokens F1 with number normalisation, max over the `|`-separated gold answers."""
    predicted = drop_bag(as_text(answer))
    return max(_f1_one(predicted, drop_bag(ref)) for ref in gold.split("|"))


# ---- multiple choice -----------------------------------------------------------------------
def parse_choice(answer: Any) -> str | None:
    """The option letter A-D the answer names, or None."""
    text = as_text(answer).strip()
    for pattern in _CHOICE_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1).upper()
    return None


def choice_match(answer: Any, gold: str) -> float:
    return float(parse_choice(answer) == gold)


# ---- ARC -----------------------------------------------------------------------------------
def parse_grid(answer: Any) -> list[list[int]] | None:
    """A grid from a list or its text form; None for anything that is not a list of int rows."""
    value = answer
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)  # literals only: never evaluates code
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return None
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(row, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in row)
               for row in value):
        return None
    return value


def grid_match(answer: Any, gold: list[list[int]]) -> float:
    """1.0 only for exactly the gold grid."""
    return float(parse_grid(answer) == gold)
