"""Parsing candidate source on the host: once per attempt, one thread at a time, one wording.

CPython 3.11 keeps the counter that guards the C-to-Python AST conversion per interpreter, not
per thread, so two threads inside `ast.parse` at once can fail with "SystemError: AST
constructor recursion depth mismatch". The loop checks candidates in parallel slots, and that
SystemError would stop the whole run as if the environment had broken; every host-side parse of
candidate code therefore goes through this lock (a parse takes about a millisecond).

`Source` is a candidate's code parsed once: the code id (dedupe), the engine's gate and the
domain's check all read its tree instead of parsing again, and code that does not parse has one
reason, worded once (`unparsable_reason`): line, column and message, for the repair prompt.
"""

from __future__ import annotations

import ast
import threading
from dataclasses import dataclass

__all__ = ["Source", "Unparsable", "parse", "unparsable_reason"]

_LOCK = threading.Lock()
UNPARSABLE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)  # ValueError: null bytes


def parse(source: str) -> ast.Module:
    """`ast.parse(source)`, serialised across threads; raises SyntaxError/ValueError as it does."""
    with _LOCK:
        return ast.parse(source)


def unparsable_reason(exc: BaseException) -> str:
    """The one-line reason code does not parse, as the LLM reads it in the repair prompt."""
    if isinstance(exc, SyntaxError):
        column = f", column {exc.offset}" if exc.offset else ""
        return f"syntax error at line {exc.lineno}{column}: {exc.msg}"
    return f"the code cannot be parsed: {type(exc).__name__}: {exc}"[:300]


class Unparsable(ValueError):
    """The code does not parse; `reason` is `unparsable_reason`'s line."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Source:
    """Candidate code and its tree, parsed once (`tree` None and `error` set when it does not parse).

    The tree is shared: readers must not change it, except the gate, which RestrictedPython's
    transformer rewrites as it checks and which therefore reads it last (see
    engine.search.pipeline.static_checks)."""

    code: str
    tree: ast.Module | None
    error: str | None = None

    @classmethod
    def parse(cls, code: str) -> Source:
        try:
            return cls(code, parse(code))
        except UNPARSABLE_ERRORS as exc:
            return cls(code, None, unparsable_reason(exc))

    def require(self) -> ast.Module:
        """The tree; Unparsable with the reason when there is none."""
        if self.tree is None:
            raise Unparsable(self.error or "the code cannot be parsed")
        return self.tree
