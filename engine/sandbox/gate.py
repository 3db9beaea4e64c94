"""Static gate: reject, before any build, candidate code that can never be right.

The policy is RestrictedPython's node transformer, subclassed for code that runs unchanged in a
container (`engine/sandbox/gate_policy.py`: what it loosens for ordinary agents and losses and
what it tightens because no run-time guard follows). The gate is a fast filter whose one-line
reason goes back to the LLM; the container stays the boundary.
"""

from __future__ import annotations

from engine import pyast
from engine.sandbox.errors import GateError
from engine.sandbox.gate_policy import GatePolicy

__all__ = ["GateError", "check_code"]


def check_code(code: str) -> None:
    """Raise GateError with a one-line reason (the first violation) if `code` breaks the policy."""
    try:
        tree = pyast.parse(code)
    except SyntaxError as exc:
        raise GateError(f"syntax error at line {exc.lineno}: {exc.msg}") from None
    except ValueError as exc:  # e.g. null bytes in the source
        raise GateError(f"unparsable code: {exc}") from None
    policy = GatePolicy()
    policy.visit(tree)
    if policy.violations:
        line, reason = policy.violations[0]
        raise GateError(f"line {line if line is not None else '?'}: {reason}")
