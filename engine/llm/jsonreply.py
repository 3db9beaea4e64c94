"""Reading a JSON object out of an LLM reply, leniently.

Servers without constrained output (and small models even with it) wrap JSON in code fences,
put prose around it, write Python-style triple-quoted strings for a `code` field, leave trailing
commas or answer with a Python dict literal. We try, in order: the whole text, each fenced
block, each balanced {...} span; each of those as is, then repaired. Every step is linear or
bounded, so a huge reply costs little. What still cannot be read raises LLMReplyError with a
reason written for the LLM (the repair prompt shows it).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

from engine.llm.errors import LLMReplyError

MAX_REPLY_CHARS = 2_000_000     # beyond this we refuse instead of scanning
MAX_CANDIDATE_SPANS = 20        # balanced {...} spans tried per reply
MAX_LITERAL_EVAL_CHARS = 200_000

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)(?:```|\Z)", re.DOTALL)
_TRIPLE = re.compile(r'("""|\'\'\')(.*?)\1', re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def parse_json_object(text: str, *, required: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The first JSON object readable in `text`, with every key in `required` present."""
    if len(text) > MAX_REPLY_CHARS:
        raise LLMReplyError(f"reply too long ({len(text):,} characters, limit {MAX_REPLY_CHARS:,}); "
                            "reply with one compact JSON object", text[:1000])
    if not text.strip():
        raise LLMReplyError("empty reply; reply with one JSON object", text)
    first_error: str | None = None
    for candidate in _candidates(text):
        for repaired in _repairs(candidate):
            value, error = _load(repaired)
            if isinstance(value, dict):
                _check_required(value, required, text)
                return value
            if first_error is None and repaired.lstrip().startswith("{"):
                first_error = error or f"expected a JSON object, got {type(value).__name__}"
    reason = ("no JSON object found in the reply; reply with one JSON object" if first_error is None
              else f"the reply is not valid JSON ({first_error}); reply with one JSON object only")
    raise LLMReplyError(reason, text)


def _check_required(value: dict[str, Any], required: list[str] | tuple[str, ...], text: str) -> None:
    missing = [key for key in required if key not in value]
    if missing:
        raise LLMReplyError(f"the JSON object lacks required field(s) {', '.join(map(repr, missing))}; "
                            f"it has {', '.join(map(repr, value)) or 'no fields'}", text)


def _candidates(text: str) -> Iterator[str]:
    """The whole text, then fenced blocks (json-tagged first), then balanced brace spans."""
    yield text.strip()
    fences = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    for _, body in sorted(fences, key=lambda f: f[0] != "json"):
        yield body.strip()
    yield from _brace_spans(text)


def _brace_spans(text: str) -> Iterator[str]:
    """Top-level balanced {...} spans, tracking JSON and triple-quoted strings; one linear pass."""
    depth, start, found, i, n = 0, -1, 0, 0, len(text)
    quote: str | None = None
    while i < n and found < MAX_CANDIDATE_SPANS:
        ch = text[i]
        if quote is not None:
            if ch == "\\" and len(quote) == 1:
                i += 2
                continue
            if text.startswith(quote, i):
                i += len(quote)
                quote = None
                continue
        elif text.startswith('"""', i) or text.startswith("'''", i):
            quote = text[i:i + 3]
            i += 3
            continue
        elif ch == '"' and depth > 0:
            quote = '"'
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                found += 1
                yield text[start:i + 1]
        i += 1


def _repairs(candidate: str) -> Iterator[str]:
    """The candidate as is, then with triple-quoted strings turned into JSON strings and trailing
    commas dropped."""
    yield candidate
    fixed = _TRIPLE.sub(lambda m: json.dumps(m.group(2)), candidate)
    fixed = _TRAILING_COMMA.sub(r"\1", fixed)
    if fixed != candidate:
        yield fixed


def _load(candidate: str) -> tuple[Any, str | None]:
    try:
        return json.loads(candidate, strict=False), None  # strict=False: raw newlines inside strings
    except json.JSONDecodeError as exc:
        error = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return None, "nesting too deep"
    if len(candidate) <= MAX_LITERAL_EVAL_CHARS and candidate.lstrip().startswith("{"):
        try:
            return ast.literal_eval(candidate), None  # a Python dict literal ('single quotes', True)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            pass
    return None, error
