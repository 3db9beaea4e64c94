"""Turning whatever the meta LLM replied into a Proposal, or into a one-line reason it cannot be.

The reasons are written for the LLM: they go into the archive and into the repair prompt.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from engine import pyast
from engine.search.candidate import CandidateFailure, Proposal, Status

PROPOSAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "thought": {"type": "string"},
        "name": {"type": "string"},
        "code": {"type": "string"},
    },
    "required": ["thought", "name", "code"],
}
MAX_NAME_CHARS = 200
MAX_THOUGHT_CHARS = 20_000  # the thought is shown in later prompts: a runaway one must not crowd them out


def _invalid(reason: str) -> CandidateFailure:
    return CandidateFailure(Status.INVALID, reason)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def parse_proposal(data: Any, *, max_code_chars: int) -> Proposal:
    """A Proposal from the parsed JSON reply; CandidateFailure(INVALID) says what is missing."""
    if not isinstance(data, dict):
        raise _invalid(f"the reply is a JSON {type(data).__name__}, not an object with thought, name and code")
    code = data.get("code")
    if code is None:
        raise _invalid(f"the JSON reply has no \"code\" field (fields: {', '.join(map(str, data)) or 'none'})")
    if not isinstance(code, str):
        raise _invalid(f"\"code\" must be a string of Python source, got a JSON {type(code).__name__}")
    if not code.strip():
        raise _invalid("\"code\" is empty")
    if len(code) > max_code_chars:
        raise _invalid(f"\"code\" is {len(code):,} characters; the limit is {max_code_chars:,}")
    name = " ".join(_text(data.get("name") or "unnamed").split())[:MAX_NAME_CHARS] or "unnamed"
    thought = _text(data.get("thought") or "")
    if len(thought) > MAX_THOUGHT_CHARS:
        thought = thought[:MAX_THOUGHT_CHARS] + " [... truncated]"
    return Proposal(name=name, thought=thought, code=code)


def candidate_tree(code: str | pyast.Source | ast.Module) -> ast.Module:
    """The tree of candidate code (parsed here when given as text); CandidateFailure(INVALID)
    with pyast's one-line reason (line, column, message) when it does not parse."""
    if isinstance(code, ast.Module):
        return code
    source = code if isinstance(code, pyast.Source) else pyast.Source.parse(code)
    try:
        return source.require()
    except pyast.Unparsable as exc:
        raise _invalid(exc.reason) from None
