"""`evobox llm ...`: run the embedded model by hand, and check which LLM a run would use."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from engine.cli import logging as evobox_logging
from engine.config import ConfigError, load_config
from engine.llm.client import LLMCallError, LLMClient
from engine.llm.config import EmbeddedConfig, LLMConfig, Role, RoleConfig, role_overrides
from engine.llm.embedded import EmbeddedError, EmbeddedServer, model_path
from engine.llm.endpoint import Endpoint, EndpointError, Source, needs_embedded, resolve, route

llm_app = typer.Typer(help="The LLM layer: the embedded local model and endpoint checks.", no_args_is_help=True)
console = Console()

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="Run config TOML; its [llm] table is used.")


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]{escape(message)}[/red]")
    return typer.Exit(code)


def _llm_config(path: Path | None) -> LLMConfig:
    try:
        return load_config(path).llm
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None


@contextlib.contextmanager
def _embedded(settings: EmbeddedConfig) -> Iterator[EmbeddedServer]:
    """The embedded server, with a progress bar while the model downloads/loads."""
    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                        console=console, transient=True)
    task = progress.add_task("embedded model", total=None)

    def report(done: int, total: int, message: str) -> None:
        progress.update(task, completed=done, total=total, description=message)

    server = EmbeddedServer(settings, progress=report)
    try:
        with progress:
            progress.update(task, description="loading the embedded model")
            server.start()
    except EmbeddedError as exc:
        raise _fail(str(exc)) from None
    try:
        yield server
    finally:
        server.close()


@llm_app.command()
def serve(config: Path | None = CONFIG_OPTION,
          threads: int | None = typer.Option(None, help="Generation threads (default: [llm.embedded] threads = 1; "
                                                        "2 is faster only on an idle 2-core machine)."),
          ctx_size: int | None = typer.Option(None, help="Context length per request slot in tokens (default 8192)."),
          parallel: int | None = typer.Option(None, help="Requests served at once (default: [llm.embedded] parallel = 3)."),
          port: int | None = typer.Option(None, help="Port on 127.0.0.1 (default: a free one).")) -> None:
    """Run the embedded Qwen2.5-Coder-1.5B model (downloading it once) until Ctrl-C."""
    evobox_logging.configure(console, level="warning")
    settings = _llm_config(config).embedded
    updates = {k: v for k, v in {"threads": threads, "ctx_size": ctx_size, "parallel": parallel,
                                         "port": port}.items() if v is not None}
    settings = settings.model_copy(update=updates)
    with _embedded(settings) as server:
        url = server.endpoint.base_url
        name = settings.served_name()
        console.print(f"Serving {escape(name)} at [bold]{url}[/bold] "
                      f"({settings.threads} thread(s), {settings.parallel} slot(s) of {settings.ctx_size} tokens)")
        console.print(escape(f"Point a run at it: OPENAI_BASE_URL={url} evobox search DOMAIN --model {name} "
                             f'(or base_url = "{url}", model = "{name}" in [llm.meta]). Ctrl-C stops it.'))
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopping")


MODEL_OPTION = typer.Option(None, "--model", help="Model for both roles (as `evobox search --model`).")
BASE_URL_OPTION = typer.Option(None, "--base-url", help="Server for both roles (as `evobox search --base-url`).")


@llm_app.command()
def check(config: Path | None = CONFIG_OPTION, model: str | None = MODEL_OPTION, base_url: str | None = BASE_URL_OPTION,
          call: bool = typer.Option(True, help="Send one tiny request to each endpoint (starts the embedded "
                                               "model if a role uses it). --no-call: resolve only, send nothing.")) -> None:
    """Say which server and model each role of a run would use (never printing a key) and whether it answers."""
    evobox_logging.configure(console, level="warning")
    try:
        llm = load_config(config, role_overrides(model, base_url)).llm
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None
    with contextlib.ExitStack() as stack:
        server = None
        if any(needs_embedded(llm, role) for role in Role):
            path = model_path(llm.embedded)
            console.print(f"embedded model: {path} ({'cached' if path.exists() else 'not downloaded yet: 1.1 GB'})")
            if call:
                server = stack.enter_context(_embedded(llm.embedded))
        results = [_check_role(llm, role, server, call) for role in Role]
    raise typer.Exit(0 if all(results) else 1)


def _check_role(llm: LLMConfig, role: Role, server: EmbeddedServer | None, call: bool) -> bool:
    console.print(f"[bold]{role.value}[/bold]")
    try:
        decided = route(llm, role)
        shown = decided.describe()
        if server is not None and decided.source is Source.EMBEDDED:
            shown["base URL"] = server.endpoint.base_url
    except EndpointError as exc:
        console.print(f"  [red]{escape(str(exc))}[/red]")
        return False
    for label, value in shown.items():
        console.print(f"  {label + ':':9} {escape(value)}", highlight=False, soft_wrap=True)
    if not call:
        return True
    settings = llm.meta if role is Role.META else llm.agent
    ok, answer = _ping(resolve(llm, role, server), settings)
    console.print(f"  answers:  {'[green]yes[/green]' if ok else '[red]no[/red]'}, {escape(answer)}")
    return ok


def _ping(endpoint: Endpoint, settings: RoleConfig) -> tuple[bool, str]:
    quick = settings.model_copy(update={"max_retries": 1, "timeout_s": min(settings.timeout_s, 120)})
    started = time.monotonic()
    try:
        reply = LLMClient(endpoint, quick).chat([{"role": "user", "content": "Reply with the single word: ok"}],
                                                max_tokens=5, temperature=0)
    except LLMCallError as exc:
        return False, str(exc)
    return True, f"{time.monotonic() - started:.1f}s: {reply.text.strip()[:40]!r}"
