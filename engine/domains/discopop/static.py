"""Static check of a proposed loss: one top-level function with the right parameters.

Runs in the engine after the sandbox's gate and before any image is built, so a malformed
proposal costs no container. Each failure is one line for the repair prompt. The in-container
loader (dpbox.candidate) applies the same rules to the live function.
"""

from __future__ import annotations

import ast

from engine.search.candidate import CandidateFailure, Status
from engine.search.proposal import candidate_tree

LOGP_PARAMS = 4  # policy_chosen, policy_rejected, reference_chosen, reference_rejected
SIGNATURE_HINT = (
    "def loss(self, policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, "
    "reference_rejected_logps) using self.beta, or def loss(policy_chosen_logps, policy_rejected_logps, "
    "reference_chosen_logps, reference_rejected_logps, beta)"
)


def _invalid(reason: str) -> CandidateFailure:
    return CandidateFailure(Status.INVALID, reason)


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def the_function(code: str | ast.Module) -> ast.FunctionDef:
    """The single top-level function; only imports and a docstring may sit beside it."""
    tree = candidate_tree(code)
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    others = [
        node for node in tree.body
        if not isinstance(node, (ast.FunctionDef, ast.Import, ast.ImportFrom)) and not _is_docstring(node)
    ]
    if any(isinstance(node, ast.AsyncFunctionDef) for node in tree.body):
        raise _invalid("the loss must be a plain def, not async def")
    if len(functions) != 1:
        raise _invalid(f"the code must define exactly one top-level function, found {len(functions)}: {SIGNATURE_HINT}")
    if others:
        kind = type(others[0]).__name__
        raise _invalid(f"line {others[0].lineno}: only imports and the one function may be at the top level "
                       f"(found {kind}); put constants and helpers inside the function")
    return functions[0]


def check_signature(function: ast.FunctionDef) -> None:
    """Accept the method convention (self first, reads self.beta) or a `beta` parameter."""
    args = function.args
    if args.vararg or args.kwarg:
        raise _invalid(f"use named parameters, not *args/**kwargs: {SIGNATURE_HINT}")
    positional = [a.arg for a in args.posonlyargs + args.args]
    required = positional[: len(positional) - len(args.defaults)]
    keyword_required = [a.arg for a, default in zip(args.kwonlyargs, args.kw_defaults) if default is None]
    if positional and positional[0] == "self":
        if len(required) - 1 != LOGP_PARAMS or keyword_required:
            raise _invalid(f"the method takes self and 4 log-prob tensors, got ({', '.join(positional)}): {SIGNATURE_HINT}")
        return
    names = positional + [a.arg for a in args.kwonlyargs]
    if "beta" not in names:
        raise _invalid(f"the function needs `self` first (reading self.beta) or a `beta` parameter: {SIGNATURE_HINT}")
    if "beta" in positional[:LOGP_PARAMS]:
        raise _invalid(f"beta must come after the 4 log-prob tensors: {SIGNATURE_HINT}")
    logps_required = [name for name in required if name != "beta"]
    if len(logps_required) != LOGP_PARAMS or [k for k in keyword_required if k != "beta"]:
        raise _invalid(f"the function takes 4 log-prob tensors and beta, got ({', '.join(names)}): {SIGNATURE_HINT}")


def check_loss_code(code: str | ast.Module) -> None:
    """The static check of a proposed loss (text, or the tree the loop parsed)."""
    check_signature(the_function(code))
