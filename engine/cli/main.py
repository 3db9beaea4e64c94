"""The `evobox` root command: mounts each component's sub-app, and each registered domain's own
commands (`evobox <domain> ...`, from Domain.cli_commands, lent the CLI's runner)."""

from __future__ import annotations

import typer

from engine.cli import search as search_cli
from engine.cli.llm import llm_app
from engine.cli.sandbox import images_app, sandbox_app
from engine.domains import REGISTRY, resolve_domain

app = typer.Typer(help="evobox: sandboxed LLM-driven discovery (ADAS agents, DiscoPOP losses).",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
app.command("search")(search_cli.search)
app.command("resume")(search_cli.resume)
app.command("report")(search_cli.report)
app.add_typer(search_cli.archive_app, name="archive")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(images_app, name="images")
app.add_typer(llm_app, name="llm")

for _name in sorted(REGISTRY):
    _commands = resolve_domain(_name).cli_commands(search_cli.run_command)
    if _commands is not None:
        app.add_typer(_commands, name=_name)
