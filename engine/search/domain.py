"""The interface between the generic loop and a domain (ADAS agents, DiscoPOP losses, ...).

A domain is one package under engine/domains/. It supplies prompts, baselines, static checks,
and an `evaluate` that builds, unit-tests, runs and scores one candidate through the sandbox it
is handed. Adding a domain touches neither engine/search nor engine/sandbox.
"""

from __future__ import annotations

import abc
import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel

from engine.sandbox.limits import SandboxLimits
from engine.search.candidate import Evaluation, Proposal
from engine.search.stop import StopReason

if TYPE_CHECKING:  # imported lazily so that engine.search does not need docker at import time
    from engine.llm.gateway import Gateway
    from engine.llm.config import LLMConfig
    from engine.sandbox.images import ImageBuilder
    from engine.sandbox.runner import Sandbox


class RunCommand(Protocol):
    """What the CLI lends a domain's own commands (`Domain.cli_commands`), so that a domain never
    imports the CLI: it sets up logging, calls `plan`, then runs with events.jsonl, the live
    display and Ctrl-C / SIGTERM handling, and prints how the run ended.

    `plan` returns the run directory and the function that starts the run (it takes the keyword
    arguments stopper, observer, on_open and remote, passes them to run_search, and returns the
    runner's RunOutcome); a ValueError
    or ConfigError it raises is printed as a one-line error (exit status 2) before anything is
    written."""

    def __call__(self, plan: Callable[[], tuple[Path, Callable[..., Any]]], *, log_level: str,
                 no_progress: bool) -> None: ...


@dataclass
class RunContext:
    """Services shared by every candidate of one run; handed to `Domain.prepare`."""

    run_id: str
    run_dir: Path
    cache_dir: Path  # survives runs: reference models, baseline scores, downloaded data
    sandbox: "Sandbox"
    images: "ImageBuilder"
    gateway: "Gateway | None"  # set when the domain declares needs_gateway
    llm: "LLMConfig"
    limits: SandboxLimits = field(default_factory=SandboxLimits)  # the run config's [sandbox] table


@dataclass
class CandidateContext:
    """Everything one evaluation may use. `stage` reports progress (build/test/evaluate)."""

    run: RunContext
    candidate_id: str
    candidate_dir: Path  # run_dir/candidates/<id>/: logs, raw outputs, transcripts
    stage: Callable[[str], None]
    log: Any  # a structlog bound logger


class Domain(abc.ABC):
    """One kind of thing to discover. Subclasses are registered in engine.domains.REGISTRY."""

    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]  # the [domain] table of the run config
    needs_gateway: ClassVar[bool] = False  # ADAS agents call an LLM; losses do not

    def __init__(self, config: BaseModel):
        self.config = config

    # ---- prompts -------------------------------------------------------------------------
    @abc.abstractmethod
    def system_prompt(self) -> str:
        """Role and output format for the meta LLM (JSON with thought, name, code)."""

    @abc.abstractmethod
    def proposal_prompt(self, archive_text: str) -> str:
        """Domain description, framework, examples, the archive as text, and the task."""

    @abc.abstractmethod
    def reflection_prompts(self) -> list[str]:
        """Follow-up prompts sent in the same conversation, one per reflection round."""

    @abc.abstractmethod
    def repair_prompt(self, error: str) -> str:
        """Shown after a failure: the error, and the request to fix the code."""

    # ---- candidates ----------------------------------------------------------------------
    @abc.abstractmethod
    def baselines(self) -> list[Proposal]:
        """Hand-written candidates that seed the archive (generation 'initial')."""

    @abc.abstractmethod
    def check(self, tree: ast.Module) -> None:
        """Domain static checks of the candidate's parsed code (e.g. the function's signature);
        the loop parses once and reports the engine's gate first. Do not change `tree`.

        Raise CandidateFailure(Status.INVALID, reason) on a problem.
        """

    def evaluation_key(self) -> str:
        """Identifies the evaluation setting (benchmark, split, model...): baseline scores are
        cached per key, so changing the setting re-evaluates them."""
        return self.config.model_dump_json()

    def resource_limits(self, run: RunContext) -> SandboxLimits:
        """The largest container one evaluation runs (cpus, memory_bytes, gpus): what the Ray
        executor reserves on a node for it. Default: the run's [sandbox] limits."""
        return run.limits

    def prepare(self, run: RunContext) -> None:
        """Once per run, before any candidate: build images, reference artifacts, load data."""

    def llm_calls_in_flight(self) -> int:
        """Gateway calls one candidate's evaluation has in flight at once (e.g. its question
        threads): the gateway's default concurrency is this times the run's evaluation slots."""
        return 1

    @abc.abstractmethod
    def evaluate(self, proposal: Proposal, ctx: CandidateContext) -> Evaluation:
        """Build, unit-test, run and score one candidate. Thread-safe: slots run in parallel.

        Raise CandidateFailure for anything that is the candidate's fault (with a one-line
        reason for the repair prompt); let infrastructure errors propagate.
        """

    @classmethod
    def cli_commands(cls, run: RunCommand) -> Any:
        """Optional typer.Typer with domain commands (e.g. ADAS `evaluate`), mounted by the CLI as
        `evobox <domain name> ...`; `run` is the CLI's way of running a search, lent so that the
        domain imports no CLI code. Keep the domain module light to import: it is imported at
        CLI start-up for this."""
        return None

    def report_extras(self, archive: list[Mapping[str, Any]], out_dir: Path) -> list[Path]:
        """Optional domain plots for the run report (e.g. reward vs KL). Returns image paths."""
        return []

    def after_search(self, run_dir: Path, **run_kwargs: Any) -> tuple[StopReason, str] | None:
        """Work that follows a completed search, once its services are closed (ADAS: the best
        agents on the test split). `run_kwargs` (stopper, observer, on_open, remote) are for a nested
        run. None: nothing to do; else how that work ended. Must be resumable: it runs again
        on every resume of a completed run."""
        return None

    def report_lead(self, run_dir: Path) -> str:
        """Optional HTML that opens the run report (ADAS: the test-split table and verdict)."""
        return ""
