"""CLI pieces of the sandbox: `evobox sandbox exec|gc` and `evobox images build`.

`sandbox exec` is how people try code by hand and how the sandbox is checked from outside:
it prints exactly one JSON object on stdout (progress and logs go to stderr).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from engine.cli.logging import configure as configure_logging
from engine.sandbox.client import connect
from engine.sandbox.engine import describe
from engine.sandbox.errors import SandboxError
from engine.sandbox.images import ImageBuilder, images_dir, runtime_names
from engine.sandbox.limits import SandboxLimits, parse_size
from engine.sandbox.outfs import reap_outfs
from engine.sandbox.reaper import reap
from engine.sandbox.runner import RunResult, Sandbox

sandbox_app = typer.Typer(help="Run code in the hardened sandbox; clean up after dead runs.", no_args_is_help=True)
images_app = typer.Typer(help="Build the sandbox images (offline, idempotent).", no_args_is_help=True)

_err = Console(stderr=True, soft_wrap=True)


@sandbox_app.callback()
@images_app.callback()
def _setup() -> None:
    """Events go to stderr: stdout carries only the command's result."""
    configure_logging(_err, level="warning")


@sandbox_app.command("exec")
def exec_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="Python file to run.")],
    timeout: Annotated[float, typer.Option(help="Wall-clock limit in seconds.")] = 60.0,
    memory: Annotated[str, typer.Option(help="Memory limit, e.g. 512m, 2g.")] = "1g",
    image: Annotated[str | None, typer.Option(help="A runtime name from sandbox_images/ or an image tag (default: base).")] = None,
) -> None:
    """Run FILE.py in the sandbox and print one JSON report (files written to /out are listed, then discarded)."""
    try:
        limits = SandboxLimits(timeout_s=timeout, memory_bytes=parse_size(memory))
        builder = ImageBuilder(progress=lambda msg: _err.print(f"[dim]{msg}[/dim]"))
        tag = _resolve_image(builder, image)
        result = _exec(tag, file, limits)
    except (SandboxError, ValueError) as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    sys.stdout.write(json.dumps(_report(result)) + "\n")


def _resolve_image(builder: ImageBuilder, image: str | None) -> str:
    if image is None:
        return builder.base()
    if image in runtime_names():
        return builder.runtime(image)
    return image


def _exec(tag: str, file: Path, limits: SandboxLimits) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="evobox-exec-") as tmp:
        in_dir, out_dir = Path(tmp) / "in", Path(tmp) / "out"
        in_dir.mkdir()
        shutil.copyfile(file, in_dir / "main.py")
        (in_dir / "main.py").chmod(0o644)
        in_dir.chmod(0o755)
        with Sandbox(f"exec-{uuid.uuid4().hex[:12]}") as sandbox:
            return sandbox.run(tag, ["python3", "/in/main.py"], limits=limits, in_dir=in_dir, out_dir=out_dir,
                               labels={"evobox.kind": "exec"})


def _report(result: RunResult) -> dict:
    return {
        "exit_code": result.exit_code,
        "timed_out": result.timed_out,
        "oom_killed": result.oom_killed,
        "duration_s": result.duration_s,
        "stdout_tail": result.stdout_tail,
        "stderr_tail": result.stderr_tail,
        "out_files": [{"name": name, "size": size} for name, size in sorted(result.out_files.items())],
        "out_overflow": result.out_overflow,
    }


@sandbox_app.command("gc")
def gc() -> None:
    """Remove containers, candidate images and /out mounts left by runs that are no longer alive."""
    try:
        client = connect()
        engine = describe(client, getattr(client, "evobox_source", "given client"))
        done = reap(client, engine.lock_dir())
        mounts = reap_outfs(engine.lock_dir(), engine)
    except SandboxError as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    typer.echo(f"removed {done.containers} container(s), {done.images} image(s) and {mounts} /out mount(s) of dead runs")


@images_app.command("build")
def build(
    only: Annotated[list[str] | None, typer.Option("--only", help="Build only these runtimes (repeatable).")] = None,
) -> None:
    """Build the base image and every runtime under sandbox_images/ that has a Dockerfile; skip what exists."""
    names = only or runtime_names()
    unknown = sorted(set(names) - set(runtime_names()))
    if unknown:
        _err.print(f"[red]error:[/red] no recipe for {', '.join(unknown)} under {images_dir()}")
        raise typer.Exit(2)
    with _err.status("images") as status:
        try:
            builder = ImageBuilder(progress=lambda msg: status.update(msg))
            _err.print(f"base: {builder.base()}")
            for name in names:
                status.update(f"runtime {name}")
                _err.print(f"runtime {name}: {builder.runtime(name)}")
        except SandboxError as exc:
            _err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
