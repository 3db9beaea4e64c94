"""`evobox adas evaluate RUN_DIR`: re-evaluate a run's best agents on the test split, another
benchmark or another agent model (the paper's transfer experiments).

A transfer is itself a run, in RUN_DIR/transfer/<benchmark>-<split>-<model>/: zero generations,
and the archive seeded with the baselines plus the source run's top-K agents. So it gets the
same report, resume after a crash, and the baseline-score cache for free.

This module sits below `domain.py` (which imports it): the domain class that runs a transfer is
handed in by the caller (`AdasDomain.after_search`, `AdasDomain.cli_commands`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.config import RunConfig, build_config
from engine.domains.adas.baselines import BaselineName, baselines as hand_written
from engine.domains.adas.benchmarks import Benchmark, Split
from engine.domains.adas.config import AdasConfig
from engine.search.archive import load_records
from engine.search.candidate import Proposal, Status
from engine.search.domain import Domain, RunCommand
from engine.search.rundir import load_saved_config, run_domain_spec
from engine.search.runner import RunOutcome, run_search

DOMAIN = "adas"


class TransferError(ValueError):
    """The source run cannot be transferred (not an ADAS run, no scored agent). A ValueError, so
    that the CLI prints it as a one-line error."""


def best_agents(run_dir: Path, top_k: int) -> list[Proposal]:
    """The top-K scored agents the search discovered (baselines excluded), best first."""
    records = [r for r in load_records(run_dir)
               if r.status is Status.OK and r.fitness is not None and r.generation != "initial"]
    records.sort(key=lambda r: r.fitness, reverse=True)  # type: ignore[arg-type, return-value]
    return [Proposal(r.name, r.thought, r.code) for r in records[:top_k]]


def initial_agents(config: AdasConfig) -> list[Proposal]:
    """A run's initial candidates: the hand-written baselines, plus the best agents of another
    run when transferring."""
    chosen = hand_written(config.baselines)
    if config.agents_from:
        chosen += best_agents(Path(config.agents_from), config.top_k)
    return chosen


def transfer_config(run_dir: Path, benchmark: Benchmark, split: Split, *, model: str | None = None,
                    top_k: int = 3, n_questions: int = 0, baselines: list[BaselineName] | None = None) -> RunConfig:
    """The source run's config, pointed at another benchmark/split/model, with no generations.
    `baselines`: None keeps the source run's. Every agent gets a number: an all-zero score is a
    result here, not a failure to repair (min_accuracy 0), and no transfer runs a final test."""
    if run_domain_spec(run_dir) != DOMAIN:
        raise TransferError(f"{run_dir} is not an ADAS run")
    if not best_agents(run_dir, 1):
        raise TransferError(f"{run_dir} has no scored discovered agent to re-evaluate")
    source = load_saved_config(run_dir)
    domain: dict[str, Any] = dict(source.domain)
    if domain.get("benchmark") != benchmark.value:
        domain["source"] = None  # the source run's data path belongs to its own benchmark
    domain.update(benchmark=benchmark.value, split=split.value, n_questions=n_questions,
                  agents_from=str(run_dir.resolve()), top_k=top_k, min_accuracy=0.0,
                  final_test={**domain.get("final_test", {}), "enabled": False})
    if baselines is not None:
        domain["baselines"] = [b.value for b in baselines]
    raw = source.model_dump(mode="json")
    raw["domain"] = domain
    return build_config(raw, {"search.generations": 0, "llm.agent.model": model})


def transfer_dir(run_dir: Path, benchmark: Benchmark, split: Split, model: str | None) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", model or "same-model")
    return run_dir / "transfer" / f"{benchmark.value}-{split.value}-{slug}"


def evaluate_run(domain_cls: type[Domain], run_dir: Path, benchmark: Benchmark, split: Split = Split.TEST, *,
                 model: str | None = None, top_k: int = 3, n_questions: int = 0,
                 baselines: list[BaselineName] | None = None, target: Path | None = None,
                 **run_kwargs: Any) -> RunOutcome:
    """Re-evaluate RUN_DIR's best agents in `target` (default: transfer_dir) as a run of
    `domain_cls`; returns the transfer run's outcome (report included). `run_kwargs` go to
    run_search (stopper, observer, on_open, remote)."""
    config = transfer_config(run_dir, benchmark, split, model=model, top_k=top_k, n_questions=n_questions,
                             baselines=baselines)
    return run_search(DOMAIN, domain_cls, config, target or transfer_dir(run_dir, benchmark, split, model),
                      **run_kwargs)


def cli_commands(domain_cls: type[Domain], run: RunCommand) -> typer.Typer:
    """`evobox adas ...`: the transfer command, run through the CLI's `run` (logging, live
    display, Ctrl-C, how the run ended)."""

    def evaluate_command(
        run_dir: Annotated[Path, typer.Argument(help="An ADAS run directory.", file_okay=False, exists=True)],
        benchmark: Annotated[Benchmark, typer.Option("--benchmark", help="Benchmark to evaluate on.")],
        split: Annotated[Split, typer.Option("--split", help="valid or test.")] = Split.TEST,
        model: Annotated[str | None, typer.Option("--model", help="Agent model (default: the run's).")] = None,
        top: Annotated[int, typer.Option("--top", min=1, help="How many of the run's best agents.")] = 3,
        n_questions: Annotated[int, typer.Option("--n-questions", min=0,
                                                 help="First N questions (0: the paper's whole split).")] = 0,
        no_baselines: Annotated[bool, typer.Option("--no-baselines", help="Skip the hand-written baselines.")] = False,
        log_level: Annotated[str, typer.Option("--log-level", help="Console log level.")] = "info",
        no_progress: Annotated[bool, typer.Option("--no-progress", help="No live display.")] = False,
    ) -> None:
        """Re-evaluate RUN_DIR's best agents (and the baselines) on another split, benchmark or model."""

        def plan() -> tuple[Path, Callable[..., RunOutcome]]:
            config = transfer_config(run_dir, benchmark, split, model=model, top_k=top, n_questions=n_questions,
                                     baselines=[] if no_baselines else None)
            target = transfer_dir(run_dir, benchmark, split, model)
            return target, lambda **kw: run_search(DOMAIN, domain_cls, config, target, **kw)

        run(plan, log_level=log_level, no_progress=no_progress)

    app = typer.Typer(help="ADAS commands.", no_args_is_help=True)
    app.command("evaluate")(evaluate_command)
    return app
