"""`python -m engine.cli ...`: the `evobox` command without the installed script."""

from engine.cli.main import app

app()
