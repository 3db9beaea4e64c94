"""Fixtures for DiscoPOP tests: a real sandbox, real images, a prepared domain per config.

The proxy reference artifact is built once (in a container, ~30 s) into the evobox cache dir,
keyed by its settings and the task image, and shared by every proxy-setting test as it is by
every candidate of a run (and by later test sessions).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator

import docker
import pytest
import structlog

from engine.domains.discopop.config import DiscoPopConfig
from engine.domains.discopop.domain import DiscoPopDomain
from engine.llm.config import LLMConfig
from engine.paths import cache_dir
from engine.sandbox.images import ImageBuilder
from engine.sandbox.runner import Sandbox
from engine.search.candidate import CandidateFailure, Evaluation
from engine.search.domain import CandidateContext, RunContext

_counter = itertools.count()


@pytest.fixture(scope="session")
def dp_sandbox(docker_client: docker.DockerClient) -> Iterator[Sandbox]:
    with Sandbox(f"test-discopop-{uuid.uuid4().hex[:8]}", client=docker_client) as box:
        yield box


@pytest.fixture(scope="session")
def dp_run(dp_sandbox: Sandbox, image_builder: ImageBuilder, tmp_path_factory: pytest.TempPathFactory) -> RunContext:
    root = tmp_path_factory.mktemp("discopop")
    return RunContext(run_id=dp_sandbox.run_id, run_dir=root / "run", cache_dir=cache_dir(), sandbox=dp_sandbox,
                      images=image_builder, gateway=None, llm=LLMConfig())


@pytest.fixture(scope="session")
def prepared(dp_run: RunContext) -> Callable[..., DiscoPopDomain]:
    """`prepared(**config)`: a DiscoPopDomain prepared on the session's run (artifacts cached)."""

    def make(run: RunContext | None = None, **config) -> DiscoPopDomain:
        domain = DiscoPopDomain(DiscoPopConfig(**config))
        domain.prepare(run or dp_run)
        return domain

    return make


@pytest.fixture(scope="module")
def fast_domain(prepared: Callable[..., DiscoPopDomain]) -> DiscoPopDomain:
    """One beta, one seed, 128 pairs: the quickest training that still runs every stage."""
    return prepared(betas=[1.0], seeds=[0], training={"max_pairs": 128})


def context(run: RunContext, name: str) -> CandidateContext:
    candidate_id = f"{name}-{next(_counter)}"
    directory = run.run_dir / "candidates" / candidate_id
    directory.mkdir(parents=True)
    return CandidateContext(run=run, candidate_id=candidate_id, candidate_dir=directory, stage=lambda _: None,
                            log=structlog.get_logger())


def evaluate(domain: DiscoPopDomain, run: RunContext, code: str, *, validate: bool = True) -> Evaluation:
    return domain.evaluate_code(code, context(run, "c"), validate=validate)


def failure(domain: DiscoPopDomain, run: RunContext, code: str) -> CandidateFailure:
    with pytest.raises(CandidateFailure) as caught:
        evaluate(domain, run, code)
    return caught.value
