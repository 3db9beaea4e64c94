"""The executor seam: where the loop hands one evaluation (domain.evaluate) to be run.

The loop, the archive, the journal and resume do not know which executor runs an evaluation:
they call `executor.evaluate(domain, proposal, ctx)` inside an evaluation slot and get an
Evaluation or a CandidateFailure back, as before. `LocalExecutor` calls the domain here, with
this machine's sandbox (today's behaviour, the default). The Ray executor
(engine/cluster/executor.py) runs the same domain code on the head but gives it, per
evaluation, a sandbox and an image builder on the Ray node that Ray placed it on.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Protocol

from engine.cluster.config import ExecutorConfig, ExecutorKind
from engine.search.candidate import Evaluation, Proposal
from engine.search.domain import CandidateContext, Domain, RunContext


class Executor(Protocol):
    """Runs one evaluation; thread-safe (slots call it in parallel)."""

    def evaluate(self, domain: Domain, proposal: Proposal, ctx: CandidateContext) -> Evaluation: ...


class LocalExecutor:
    """Evaluates in this process with the run's own sandbox and images."""

    def evaluate(self, domain: Domain, proposal: Proposal, ctx: CandidateContext) -> Evaluation:
        return domain.evaluate(proposal, ctx)


def open_executor(stack: ExitStack, config: ExecutorConfig, run: RunContext) -> tuple[Executor, RunContext]:
    """The configured executor (closed with `stack`) and the RunContext the domain is prepared
    with: the Ray executor's records how every image the domain builds is made, so that each node
    can build the same one. Ray is imported only for `kind = "ray"`."""
    if config.kind is ExecutorKind.LOCAL:
        return LocalExecutor(), run
    from engine.cluster.executor import RayExecutor  # noqa: PLC0415 - ray only when asked for

    executor = stack.enter_context(RayExecutor(config, run))
    return executor, executor.head_run
