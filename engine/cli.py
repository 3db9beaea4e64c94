"""The `evobox` command. Sub-apps of each component are mounted here; a domain adds its own
commands (`evobox <domain> ...`) through Domain.cli_commands()."""

from __future__ import annotations

import importlib

import typer

from engine.domains import REGISTRY
from engine.search import cli as search_cli
from engine.search.runner import resolve_domain_class

app = typer.Typer(help="evobox: sandboxed LLM-driven discovery (ADAS agents, DiscoPOP losses).",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
app.command("search")(search_cli.search)
app.command("resume")(search_cli.resume)
app.command("report")(search_cli.report)
app.add_typer(search_cli.archive_app, name="archive")

# (module, attribute, command name): components' own sub-apps.
SUB_APPS = [
    ("engine.sandbox.cli", "sandbox_app", "sandbox"),
    ("engine.sandbox.cli", "images_app", "images"),
    ("engine.llm.cli", "llm_app", "llm"),
]


def _mount_sub_apps() -> None:
    for module_name, attribute, name in SUB_APPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # a real missing dependency: show it
                raise
            continue
        app.add_typer(getattr(module, attribute), name=name)


def _mount_domain_commands() -> None:
    for name in sorted(REGISTRY):
        try:
            commands = resolve_domain_class(name).cli_commands()
        except (ImportError, ValueError):  # a domain whose package is not installed here
            continue
        if commands is not None:
            app.add_typer(commands, name=name)


_mount_sub_apps()
_mount_domain_commands()
