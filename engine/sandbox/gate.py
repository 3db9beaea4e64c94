"""Static gate: reject, before any build, candidate code that can never be right.

The policy is RestrictedPython's node transformer, subclassed for code that runs unchanged in a
container (`engine/sandbox/gate_policy.py`: what it loosens for ordinary agents and losses and
what it tightens because no run-time guard follows). The gate is a fast filter whose one-line
reason goes back to the LLM; the container stays the boundary.
"""

from __future__ import annotations

import ast

from engine import pyast
from engine.sandbox.errors import GateError
from engine.sandbox.gate_policy import GatePolicy

__all__ = ["GateError", "check_code", "check_tree"]


def check_code(code: str) -> None:
    """`check_tree` of `code`; unparsable code is a GateError with pyast's one wording."""
    source = pyast.Source.parse(code)
    if source.tree is None:
        raise GateError(source.error or "the code cannot be parsed")
    check_tree(source.tree)


def check_tree(tree: ast.Module) -> None:
    """Raise GateError with a one-line reason (the first violation) if `tree` breaks the policy.

    RestrictedPython's transformer rewrites nodes as it checks (e.g. tuple unpacking into
    `_unpack_sequence_` calls): the tree is not fit for other readers afterwards."""
    policy = GatePolicy()
    policy.visit(tree)
    if policy.violations:
        line, reason = policy.violations[0]
        raise GateError(f"line {line if line is not None else '?'}: {reason}")
