"""One direction through the house: the import contracts of pyproject.toml ([tool.importlinter])
hold. Every layer imports only from the layers below it (cli > domains | cluster > search >
config > llm > sandbox > ground floor; benchmarks/ above the engine), no two sibling packages or
modules import each other, the domains are independent, and Rich stays in engine.cli.

The same check by hand: `lint-imports` in the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def test_imports_only_go_down_and_never_in_a_cycle() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", LINT, "--no-cache", "--config", "pyproject.toml"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
