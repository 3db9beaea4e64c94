"""Evaluations on a Ray cluster (README.md here): the Ray executor behind the search's executor
seam (engine.search.executor). This package sits above the search and beside the domains; the
CLI hands `open_ray` to the runner, and Ray is imported only when a run asks for it."""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING

from engine.config import ExecutorConfig
from engine.search.domain import RunContext

if TYPE_CHECKING:
    from engine.search.executor import Executor


def open_ray(stack: ExitStack, config: ExecutorConfig, run: RunContext) -> tuple[Executor, RunContext]:
    """The Ray executor (closed with `stack`) and the head's RunContext the domain is prepared with
    (it records how every image the domain builds is made, so that each node can build the same
    one). An engine.search.executor.RemoteOpener."""
    from engine.cluster.executor import RayExecutor  # noqa: PLC0415 - ray only when asked for

    executor = stack.enter_context(RayExecutor(config, run))
    return executor, executor.head_run
