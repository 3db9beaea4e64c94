"""The `evobox` command. Sub-apps of each component are mounted here; a domain adds its own
commands (`evobox <domain> ...`) through Domain.cli_commands()."""

from __future__ import annotations

import typer

from engine.domains import REGISTRY
from engine.domains.adas.transfer import evaluate_command
from engine.llm.cli import llm_app
from engine.sandbox.cli import images_app, sandbox_app
from engine.search import cli as search_cli
from engine.search.runner import resolve_domain_class

app = typer.Typer(help="evobox: sandboxed LLM-driven discovery (ADAS agents, DiscoPOP losses).",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
app.command("search")(search_cli.search)
app.command("resume")(search_cli.resume)
app.command("report")(search_cli.report)
# The ADAS paper's transfer experiments; also reachable as `evobox adas evaluate`.
app.command("evaluate")(evaluate_command)
app.add_typer(search_cli.archive_app, name="archive")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(images_app, name="images")
app.add_typer(llm_app, name="llm")

for _name in sorted(REGISTRY):
    _commands = resolve_domain_class(_name).cli_commands()
    if _commands is not None:
        app.add_typer(_commands, name=_name)
