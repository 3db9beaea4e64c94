"""Helpers for the loop tests: a toy search against a ScriptedLLM over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog

from engine.cli import logging as evobox_logging
from engine.config import RunConfig, build_config
from engine.llm.client import LLMClient
from engine.llm.config import Role
from engine.llm.endpoint import resolve
from engine.llm.scripted import ScriptedLLM
from engine.search.archive import Record, load_records
from engine.search.domain import RunContext
from engine.search.loop import Search
from engine.search.observer import Observer
from engine.search.stop import Stopper, StopReason
from tests.third_domain.domain import ToyConfig, ToyDomain


def proposal(code: str, name: str = "Cand", thought: str = "an idea") -> str:
    return json.dumps({"thought": thought, "name": name, "code": code})


def square(tag: str = "") -> str:
    """A perfect candidate; `tag` makes distinct code (different ids) with the same behaviour."""
    return f"def f(x):\n    return x * x{' + 0 * ' + repr(tag) + '.count(chr(0))' if tag else ''}\n"


def llm_table(base_url: str, **extra: Any) -> dict[str, Any]:
    return {"meta": {"base_url": base_url, "model": "scripted", "temperature": 0.0, "max_tokens": 256,
                     "max_retries": 0}, **extra}


def toy_config(base_url: str, *, search: dict[str, Any] | None = None, domain: dict[str, Any] | None = None,
               llm: dict[str, Any] | None = None) -> RunConfig:
    return build_config({
        "search": {"generations": 1, "candidates_per_generation": 1, "reflection_rounds": 0, **(search or {})},
        "llm": llm_table(base_url, **(llm or {})),
        "domain": domain or {},
    })


@dataclass
class ToyRun:
    reason: StopReason
    detail: str
    records: list[Record]
    run_dir: Path


class ToyRunner:
    """Runs the loop in-process on one run directory (call again to resume)."""

    def __init__(self, tmp_path: Path):
        self.run_dir = tmp_path / "run"
        self.cache_dir = tmp_path / "cache"
        self.run_dir.mkdir(parents=True)
        self.cache_dir.mkdir(parents=True)

    def __call__(self, server: ScriptedLLM, *, stopper: Stopper | None = None, observer: Observer | None = None,
                 **kwargs: Any) -> ToyRun:
        config = toy_config(server.base_url, **kwargs)
        domain = ToyDomain(config.domain_config(ToyConfig))  # type: ignore[arg-type]
        client = LLMClient(resolve(config.llm, Role.META), config.llm.meta, config.llm.prices)
        run = RunContext(run_id="toy", run_dir=self.run_dir, cache_dir=self.cache_dir, sandbox=None,  # type: ignore[arg-type]
                         images=None, gateway=None, llm=config.llm, limits=config.sandbox)  # type: ignore[arg-type]
        reason, detail = Search(domain, config, run, client, stopper=stopper or Stopper(), observer=observer).run()
        return ToyRun(reason, detail, load_records(self.run_dir), self.run_dir)

    def evaluations(self) -> list[str]:
        path = self.run_dir / "evaluations.log"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """CLI tests configure structlog globally; give every test the defaults back."""
    yield
    evobox_logging.close()
    structlog.reset_defaults()


@pytest.fixture
def toy(tmp_path: Path) -> ToyRunner:
    return ToyRunner(tmp_path)


def user_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "user"]
