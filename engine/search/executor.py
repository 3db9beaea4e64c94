"""The executor seam: where the loop hands one evaluation (domain.evaluate) to be run.

The loop, the archive, the journal and resume do not know which executor runs an evaluation:
they call `executor.evaluate(domain, proposal, ctx)` inside an evaluation slot and get an
Evaluation or a CandidateFailure back, as before. `LocalExecutor` calls the domain here, with
this machine's sandbox (today's behaviour, the default). The Ray executor
(engine/cluster/executor.py) runs the same domain code on the head but gives it, per
evaluation, a sandbox and an image builder on the Ray node that Ray placed it on.

engine.cluster sits above this layer (it implements this seam with the Domain interface), so
the search never imports it: whoever starts the run (the CLI) hands its opener down as
`RemoteOpener`, as it hands down the domain's class.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Protocol

from engine.config import ConfigError, ExecutorConfig, ExecutorKind
from engine.search.candidate import Evaluation, Proposal
from engine.search.domain import CandidateContext, Domain, RunContext


class Executor(Protocol):
    """Runs one evaluation; thread-safe (slots call it in parallel)."""

    def evaluate(self, domain: Domain, proposal: Proposal, ctx: CandidateContext) -> Evaluation: ...


RemoteOpener = Callable[[ExitStack, ExecutorConfig, RunContext], tuple[Executor, RunContext]]
"""Opens the `[executor]` table's non-local executor (engine.cluster.open_ray), closed with the
stack, and returns it with the RunContext the domain is prepared with."""


class LocalExecutor:
    """Evaluates in this process with the run's own sandbox and images."""

    def evaluate(self, domain: Domain, proposal: Proposal, ctx: CandidateContext) -> Evaluation:
        return domain.evaluate(proposal, ctx)


def check_executor(config: ExecutorConfig, remote: RemoteOpener | None) -> None:
    """Refuse, before the run directory is touched, an [executor] kind the caller cannot open."""
    if config.kind is not ExecutorKind.LOCAL and remote is None:
        raise ConfigError(f"executor.kind = {config.kind.value!r}: this caller runs evaluations locally only "
                          "(the evobox CLI passes the cluster's executor)")


def open_executor(stack: ExitStack, config: ExecutorConfig, run: RunContext,
                  remote: RemoteOpener | None) -> tuple[Executor, RunContext]:
    """The configured executor (closed with `stack`) and the RunContext the domain is prepared
    with: the Ray executor's records how every image the domain builds is made, so that each node
    can build the same one. `check_executor` has passed."""
    if config.kind is ExecutorKind.LOCAL:
        return LocalExecutor(), run
    assert remote is not None
    return remote(stack, config, run)
