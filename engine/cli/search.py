"""`evobox search | resume | report | archive show`: the loop's commands, and `run_command`, the
runner lent to a domain's own commands (Domain.cli_commands). The domain is resolved here
(`engine.domains`) and its class handed down to the search runner."""

from __future__ import annotations

import inspect
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine.cli import logging as evobox_logging
from engine.cli.progress import RichProgress
from engine.cluster import open_ray
from engine.config import ConfigError, ExecutorKind, load_config
from engine.domains import resolve_domain
from engine.llm.config import role_overrides
from engine.llm.endpoint import EndpointError
from engine.sandbox.errors import SandboxError
from engine.search.archive import ARCHIVE_NAME, ArchiveCorrupt, load_records
from engine.search.candidate import Status
from engine.search.domain import Domain, RunContext
from engine.search.observer import Observer
from engine.search.rundir import RunDirError, load_saved_config, run_domain_spec
from engine.search.runner import RunOutcome, default_run_dir, resume_search, run_search
from engine.search.spend import spend_summary
from engine.search.stop import Stopper, StopReason

log = structlog.get_logger()
archive_app = typer.Typer(help="Inspect a run's archive.", no_args_is_help=True)

_EXIT_CODES = {StopReason.ERROR: 1, StopReason.INTERRUPTED: 130}
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

LogLevel = Annotated[str, typer.Option("--log-level", help="Console log level (events.jsonl gets everything).")]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="No live display (logs only).")]
ExecutorOpt = Annotated[ExecutorKind | None, typer.Option("--executor", help="Where evaluations run: local (this "
                                                          "machine) or ray (a Ray cluster); overrides [executor] kind.")]
AddressOpt = Annotated[str | None, typer.Option("--address", help="Ray cluster address (HOST:PORT of the head); "
                                                "overrides [executor] address.")]


def _fail(console: Console, message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def default_config_path(domain_class: type) -> Path | None:
    """A domain's `configs/local.toml`: the embedded default, sized for a 2-core machine.

    Used when `search` gets no --config, so `evobox search adas` alone runs the default job."""
    path = Path(inspect.getfile(domain_class)).parent / "configs" / "local.toml"
    return path if path.is_file() else None


def search(
    domain: Annotated[str, typer.Argument(help="Domain name (adas, discopop) or module:Class.")],
    config: Annotated[Path | None, typer.Option("--config", help="Run config (TOML).", dir_okay=False)] = None,
    generations: Annotated[int | None, typer.Option("--generations", help="Overrides [search] generations.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model of both roles (meta and agent); overrides "
                                              "the config's [llm.meta] and [llm.agent] model.")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="Server of both roles; overrides the "
                                                 "config's [llm.meta] and [llm.agent] base_url.")] = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="Default runs/<domain>-<time>; an "
                                                 "existing run directory is continued.")] = None,
    executor: ExecutorOpt = None,
    address: AddressOpt = None,
    log_level: LogLevel = "info",
    no_progress: NoProgress = False,
) -> None:
    """Discover candidates for DOMAIN; writes report.html at the end."""
    overrides = {"search.generations": generations, **role_overrides(model, base_url),
                 "executor.kind": executor.value if executor else None, "executor.address": address}

    def plan() -> tuple[Path, Callable[..., RunOutcome]]:
        domain_class = resolve_domain(domain)
        run_config = load_config(config or default_config_path(domain_class), overrides)
        target = run_dir or default_run_dir(domain_class.name)
        return target, lambda **kw: run_search(domain, domain_class, run_config, target, **kw)

    run_command(plan, log_level=log_level, no_progress=no_progress)


def resume(
    run_dir: Annotated[Path, typer.Argument(help="Run directory to continue.", file_okay=False, exists=True)],
    generations: Annotated[int | None, typer.Option("--generations", help="Raise or lower the generations.")] = None,
    wall_time_s: Annotated[float | None, typer.Option("--wall-time-s", help="New [search] wall_time_s (whole "
                                                      "run, earlier processes included).")] = None,
    budget_usd: Annotated[float | None, typer.Option("--budget-usd", help="New [llm] budget_usd.")] = None,
    budget_tokens: Annotated[int | None, typer.Option("--budget-tokens", help="New [llm] budget_tokens.")] = None,
    executor: ExecutorOpt = None,
    address: AddressOpt = None,
    log_level: LogLevel = "info",
    no_progress: NoProgress = False,
) -> None:
    """Continue a stopped or killed run exactly where it stopped (raise a spent budget with the options)."""
    overrides = {"search.generations": generations, "search.wall_time_s": wall_time_s,
                 "llm.budget_usd": budget_usd, "llm.budget_tokens": budget_tokens,
                 "executor.kind": executor.value if executor else None, "executor.address": address}

    def plan() -> tuple[Path, Callable[..., RunOutcome]]:
        domain_class = resolve_domain(run_domain_spec(run_dir))
        return run_dir, lambda **kw: resume_search(run_dir, domain_class, overrides, **kw)

    run_command(plan, log_level=log_level, no_progress=no_progress)


def run_command(plan: Callable[[], tuple[Path, Callable[..., RunOutcome]]], *, log_level: str,
                no_progress: bool) -> None:
    """Set up logging, then `plan` the run (a bad domain, config or run directory is a one-line
    error, exit 2, before anything is written), then run it (execute_run). Implements
    engine.search.domain.RunCommand: what `search`, `resume` and every domain command share."""
    console = Console(stderr=True)
    evobox_logging.configure(console, level=log_level)
    try:
        run_dir, start = plan()
    except (ConfigError, RunDirError, ValueError) as exc:
        raise _fail(console, str(exc)) from None
    execute_run(console, run_dir, no_progress, start)


def execute_run(console: Console, run_dir: Path, no_progress: bool, start: Callable[..., RunOutcome]) -> None:
    """Run with events.jsonl, the live display and Ctrl-C / SIGTERM handling; print how it ended.
    `start` also gets the cluster's executor opener (used when [executor] kind is ray)."""
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # its owner's alone (search.rundir.exclusive)
    evobox_logging.log_to_run_dir(run_dir)
    stopper = Stopper()
    opened: list[RunContext] = []
    handler = _on_interrupt(console, stopper, opened)
    previous = {signum: signal.signal(signum, handler) for signum in _STOP_SIGNALS}
    try:
        if no_progress or not console.is_terminal:
            outcome = start(stopper=stopper, observer=Observer(), on_open=opened.append, remote=open_ray)
        else:
            with RichProgress(console) as progress:
                outcome = start(stopper=stopper, observer=progress, on_open=opened.append, remote=open_ray)
    except (ConfigError, RunDirError, ValueError, ArchiveCorrupt, EndpointError, SandboxError) as exc:
        raise _fail(console, str(exc)) from None
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        evobox_logging.close()
    colour = "red" if outcome.reason is StopReason.ERROR else "green"
    console.print(f"[{colour}]stopped: {outcome.reason.value}[/{colour}]: {escape(outcome.detail)}",
                  highlight=False, soft_wrap=True)
    if outcome.reason is not StopReason.COMPLETED:
        console.print(f"continue with: evobox resume {escape(str(run_dir))}", highlight=False, soft_wrap=True)
    if outcome.report:
        console.print(f"report: {escape(str(outcome.report))}", highlight=False, soft_wrap=True)
    raise typer.Exit(_EXIT_CODES.get(outcome.reason, 0))


def _on_interrupt(console: Console, stopper: Stopper, opened: list[RunContext]) -> Callable[[int, Any], None]:
    """First Ctrl-C or SIGTERM (a service manager, `kill`, a batch scheduler): finish the
    evaluations in flight, start nothing new. Second: remove this run's containers and exit at
    once (unfinished candidates stay in the journal for resume)."""

    def handler(signum: int, _frame: Any) -> None:
        if stopper.reason is None:
            name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            stopper.request(StopReason.INTERRUPTED, f"interrupted ({name})")
            console.print("[yellow]stopping after the evaluations in flight; Ctrl-C again to abandon them "
                          "(they will be re-run on resume)[/yellow]")
            return
        console.print("[red]abandoning in-flight candidates[/red]")
        for run in opened:
            run.sandbox.close()
        evobox_logging.close()
        sys.stderr.flush()
        os._exit(130)

    return handler


def report(run_dir: Annotated[Path, typer.Argument(help="Run directory.", file_okay=False, exists=True)]) -> None:
    """Write RUN_DIR/report.html (self-contained: plots embedded)."""
    from engine.search.report import write_report  # noqa: PLC0415 - matplotlib is slow to import

    console = Console(stderr=True)
    if not (run_dir / ARCHIVE_NAME).exists():
        raise _fail(console, f"{run_dir} has no {ARCHIVE_NAME}")
    print(write_report(run_dir, domain_of_run(run_dir)))


def domain_of_run(run_dir: Path) -> Domain | None:
    """The run's domain with its saved config, or None when its package cannot be loaded here:
    the report is still useful without the domain's parts."""
    try:
        cls = resolve_domain(run_domain_spec(run_dir))
        return cls(load_saved_config(run_dir).domain_config(cls.config_model))
    except Exception as exc:  # noqa: BLE001 - the report stands without the domain's parts
        log.warning("report.domain_unavailable", error=f"{type(exc).__name__}: {exc}")
        return None


@archive_app.command("show")
def archive_show(
    run_dir: Annotated[Path, typer.Argument(help="Run directory.", file_okay=False, exists=True)],
    top: Annotated[int | None, typer.Option("--top", help="Only the K best scored candidates.")] = None,
) -> None:
    """The archive as a table: in archive order, or the --top K by fitness."""
    records = load_records(run_dir)
    if top is not None:
        records = sorted((r for r in records if r.status is Status.OK and r.fitness is not None),
                         key=lambda r: r.fitness, reverse=True)[:top]  # type: ignore[arg-type, return-value]
    table = Table(title=f"{run_dir} ({len(records)} shown)")
    for column in ("gen/#", "id", "name", "status", "fitness", "$ meta/agents", "error"):
        table.add_column(column, overflow="fold", min_width=16 if column == "id" else None)
    for r in records:
        table.add_row(f"{r.generation}/{r.index}", r.id, r.name, r.status.value,
                      "" if r.fitness is None else f"{r.fitness:.4g}",
                      f"{r.usage.cost_usd:.4f}/{r.agent_usage.cost_usd:.4f}", r.error or "")
    console = Console()
    console.print(table)
    meta, agents = spend_summary(run_dir, load_records(run_dir))
    console.print(f"LLM spend of the run: meta ${meta.cost_usd:.4f} ({meta.calls} calls, {meta.total_tokens:,} tok), "
                  f"agents ${agents.cost_usd:.4f} ({agents.calls} calls, {agents.total_tokens:,} tok)")
