"""Load the candidate's loss function and present it under one calling convention.

Two conventions are seen in practice: a method `(self, policy_chosen_logps, ...)` reading
`self.beta` (the DiscoPOP paper's), and a plain function taking `beta` as a parameter. The
single function the code defines is taken, whatever its name. The engine's static check has
already enforced this on the AST; this module applies the same rules to the live function.
"""

from __future__ import annotations

import inspect
import math
import types
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

CANDIDATE_FILE = "candidate_loss.py"
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]


class CandidateLoadError(Exception):
    """The candidate's code cannot be turned into a loss function (one-line reason)."""


class _BetaHolder:
    """Stands in for the trainer object a method-style loss expects as `self`."""

    def __init__(self, beta: float):
        self.beta = beta


def load_source(source: str) -> Callable[..., torch.Tensor]:
    """Execute the candidate's module with torch, F and math predefined; return its function."""
    module = types.ModuleType("candidate_loss")
    module.__dict__.update(torch=torch, F=F, math=math)
    exec(compile(source, CANDIDATE_FILE, "exec"), module.__dict__)  # the container is the sandbox
    functions = [
        value
        for value in module.__dict__.values()
        if inspect.isfunction(value) and value.__code__.co_filename == CANDIDATE_FILE
    ]
    if len(functions) != 1:
        raise CandidateLoadError(f"the code must define exactly one top-level function, found {len(functions)}")
    return functions[0]


def adapt(function: Callable[..., torch.Tensor]) -> LossFn:
    """Wrap either convention as `loss(pc, pr, rc, rr, beta)`."""
    names = list(inspect.signature(function).parameters)
    if names and names[0] == "self":

        def method_style(pc, pr, rc, rr, beta):
            return function(_BetaHolder(beta), pc, pr, rc, rr)

        return method_style
    if "beta" in names:

        def beta_style(pc, pr, rc, rr, beta):
            return function(pc, pr, rc, rr, beta=beta)

        return beta_style
    raise CandidateLoadError("the function must take `self` first (reading self.beta) or a `beta` parameter")


def load(path: Path) -> LossFn:
    return adapt(load_source(path.read_text()))
