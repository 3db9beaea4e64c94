"""Parsing candidate source on the host, one thread at a time.

CPython 3.11 keeps the counter that guards the C-to-Python AST conversion per interpreter, not
per thread, so two threads inside `ast.parse` at once can fail with "SystemError: AST
constructor recursion depth mismatch". The loop checks candidates in parallel slots, and that
SystemError would stop the whole run as if the environment had broken; every host-side parse of
candidate code therefore goes through this lock (a parse takes about a millisecond).
"""

from __future__ import annotations

import ast
import threading

__all__ = ["parse"]

_LOCK = threading.Lock()


def parse(source: str) -> ast.Module:
    """`ast.parse(source)`, serialised across threads; raises SyntaxError/ValueError as it does."""
    with _LOCK:
        return ast.parse(source)
