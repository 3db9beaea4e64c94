"""The run directory's bookkeeping: which search it holds, who works on it, how long it ran.

Run directory, and what each file promises (the module that keeps the promise in brackets):
  run.json        the domain (name or module:Class) the directory belongs to, written once (here)
  config.json     the resolved run config ([domain] validated by the domain's model): the
                  snapshot a resume starts from (here)
  .lock           flock held by the one process working on the directory (here)
  clock.json      wall time spent by all processes of the run (the wall-time budget; here)
  archive.jsonl   one record per candidate, appended in candidate order, fsync'd (archive.py)
  pending/        the journal: one file per candidate in flight, rewritten atomically after
                  every LLM reply and attempt; a finished record waits here for earlier ones
                  (journal.py)
  agent_spend.json  LLM spend through the gateway (agents, judge) by all processes of the run,
                  written after every call (spend.py): with the meta spend recorded in the
                  archive and journal, what the run budget ([llm] budget_usd/tokens) counts
  gateway/        the gateway's socket directory while the run is open (engine.llm.gateway)
  candidates/<id> what the domain wrote while evaluating that code
  events.jsonl    structlog events (CLI runs); report.html (report.py)

Every JSON file here is replaced atomically (engine.atomic): a crash leaves the old or the new.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel

from engine.atomic import write_json_atomic
from engine.config import ConfigError, RunConfig, build_config
from engine.flock import try_lock

log = structlog.get_logger()

RUN_META = "run.json"
CONFIG_NAME = "config.json"
CLOCK_NAME = "clock.json"
LOCK_NAME = ".lock"


class RunDirError(Exception):
    """The run directory cannot be used (another process holds it, or it belongs to another domain)."""


# ---- which search: run.json and the config snapshot ---------------------------------------
def run_domain_spec(run_dir: Path) -> str:
    """The domain a run directory was created for."""
    try:
        return json.loads((run_dir / RUN_META).read_text())["domain"]
    except (OSError, ValueError, KeyError) as exc:
        raise RunDirError(f"{run_dir} is not an evobox run directory (no readable {RUN_META}: {exc})") from None


def run_id_of(run_dir: Path) -> str:
    """The run's sandbox id (container labels, lock): the directory's name, after the names of
    the runs it is nested in (ADAS's RUN_DIR/test, transfers), so that nested runs of two runs
    never share an id, and a nested run never reaps another's containers."""
    path = run_dir.resolve()
    names = [path.name] + [parent.name for parent in path.parents if (parent / RUN_META).exists()]
    return ".".join(reversed(names))[-128:].lstrip(".-_") or path.name


def save_config(config: RunConfig, run_dir: Path) -> Path:
    """Write the resolved config into the run directory (temp file, fsync, rename)."""
    target = run_dir / CONFIG_NAME
    write_json_atomic(target, config.model_dump(mode="json"))
    return target


def load_saved_config(run_dir: Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The config a run was started with, plus overrides (for resume)."""
    path = run_dir / CONFIG_NAME
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{run_dir} has no readable {CONFIG_NAME}: {exc}") from None
    return build_config(raw, overrides)


def bind(run_dir: Path, domain_spec: str, config: RunConfig, domain_config: BaseModel) -> None:
    """Check that an existing run directory holds the same search, or start a new one. The
    [domain] tables are compared once validated: a setting added since the run started (with
    its default) is not a different search."""
    if (run_dir / RUN_META).exists():
        previous = run_domain_spec(run_dir)
        if previous != domain_spec:
            raise RunDirError(f"{run_dir} holds a {previous!r} run, not {domain_spec!r}")
        if load_saved_config(run_dir).domain_config(type(domain_config)) != domain_config:
            raise ConfigError(f"the [domain] table differs from the one {run_dir} was started with; "
                              "scores would not be comparable: use a new --run-dir")
    else:
        write_json_atomic(run_dir / RUN_META, {"domain": domain_spec,
                                               "created": dt.datetime.now(dt.timezone.utc).isoformat()})
    save_config(config, run_dir)


# ---- who works on it: the lock --------------------------------------------------------------
@contextmanager
def exclusive(run_dir: Path) -> Iterator[None]:
    """One process per run directory: two would append to one archive. The directory is its
    owner's alone (0700): transcripts, the gateway socket and results are no other user's business."""
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = try_lock(run_dir / LOCK_NAME, any_user=False)
    if fd is None:
        raise RunDirError(f"{run_dir} is in use by another evobox process")
    try:
        yield
    finally:
        os.close(fd)


# ---- how long it ran: the clock -------------------------------------------------------------
def elapsed_before(run_dir: Path) -> float:
    """Wall time spent on this run by earlier processes (saved at every commit)."""
    try:
        return float(json.loads((run_dir / CLOCK_NAME).read_text())["elapsed_s"])
    except FileNotFoundError:
        return 0.0
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("search.clock_unreadable", error=str(exc))
        return 0.0


def save_clock(run_dir: Path, elapsed_s: float) -> None:
    write_json_atomic(run_dir / CLOCK_NAME, {"elapsed_s": round(elapsed_s, 3)})
