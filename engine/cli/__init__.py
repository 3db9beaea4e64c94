"""The `evobox` command: the top floor of the house, and the only place for Rich, signal
handlers and logging set-up. Every typer app lives here (`main.py` mounts them); the layers
below hold no CLI code, and a domain's own commands get the CLI's runner (`search.run_command`)
instead of importing it.

`app` is the console-script entry point (`evobox = "engine.cli:app"` in pyproject.toml)."""

from engine.cli.main import app

__all__ = ["app"]
