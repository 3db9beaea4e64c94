"""The toy domain with agents: before scoring f(x), each evaluation makes `agent_calls` LLM calls
through the run's real gateway (over its unix socket, as a container would), with the
candidate's code as the prompt. A candidate all of whose calls fail is scored "All 0 accuracy",
as an ADAS agent would be, unless the engine finds the upstream down (settle_grant)."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field

from engine.config import RunConfig
from engine.llm.client import LLMClient
from engine.llm.config import Role
from engine.llm.endpoint import Endpoint, resolve
from engine.llm.gateway import Gateway
from engine.llm.scripted import Reply, ScriptedLLM
from engine.llm.usage import Budget
from engine.search.archive import Record, load_records
from engine.search.candidate import CandidateFailure, Evaluation, Proposal, Status
from engine.search.domain import CandidateContext, RunContext
from engine.search.loop import Search
from engine.search.settle import settle_grant
from engine.search.spend import RunSpend
from engine.search.stop import Stopper, StopReason
from tests.search.conftest import toy_config
from tests.third_domain.domain import ToyConfig, ToyDomain

PROVOKE = "PROVOKE"  # code holding this word gets HTTP 500 for its agent calls from the upstream


class AgentToyConfig(ToyConfig):
    agent_calls: int = Field(2, ge=1)
    docker_breaks: int = Field(0, ge=0, description="evaluations of generated candidates (per process) that "
                                                     "fail as if the Docker engine broke")


class AgentToyDomain(ToyDomain):
    name = "agent-toy"
    config_model = AgentToyConfig
    needs_gateway = True
    config: AgentToyConfig

    def __init__(self, config: AgentToyConfig):
        super().__init__(config)
        self._breaks_left = config.docker_breaks

    def evaluate(self, proposal: Proposal, ctx: CandidateContext) -> Evaluation:
        if self._breaks_left and proposal.name not in {b.name for b in self.baselines()}:
            self._breaks_left -= 1
            _append_break(ctx.run.run_dir)
            raise ConnectionError("Docker engine unreachable")
        gateway = ctx.run.gateway
        assert gateway is not None
        grant = gateway.grant(ctx.candidate_id, transcript=ctx.candidate_dir / "llm_transcript.jsonl",
                              max_calls=100, max_tokens=1_000_000)
        answered = 0
        transport = httpx.HTTPTransport(uds=str(gateway.socket_path))
        with httpx.Client(transport=transport, base_url="http://gateway", timeout=60) as http:
            for _ in range(self.config.agent_calls):
                response = http.post("/v1/chat/completions", headers={"authorization": f"Bearer {grant.token}"},
                                     json={"messages": [{"role": "user", "content": proposal.code}]})
                answered += response.status_code == 200
        settle_grant(gateway, grant.token)
        if answered == 0:
            raise CandidateFailure(Status.FAILED, "All 0 accuracy: every agent call failed")
        return super().evaluate(proposal, ctx)


def _append_break(run_dir: Path) -> None:
    with open(run_dir / "docker_breaks.log", "a") as handle:
        handle.write("break\n")


class AgentUpstream:
    """The agents' LLM on loopback: answers, fails the calls a candidate provokes, or goes down."""

    def __init__(self, *, prompt_tokens: int = 10, completion_tokens: int = 5):
        self.down = False
        self.calls = 0
        self.tokens = (prompt_tokens, completion_tokens)
        self.server = ScriptedLLM(default=self._answer)

    def _answer(self, body: dict[str, Any]) -> Reply:
        self.calls += 1
        if self.down:
            return Reply("upstream is down", status=503)
        text = " ".join(str(m.get("content")) for m in body["messages"])
        if PROVOKE in text:
            return Reply("the candidate's request broke the upstream", status=500)
        return Reply("fine", prompt_tokens=self.tokens[0], completion_tokens=self.tokens[1])

    @contextmanager
    def serving(self) -> Iterator["AgentUpstream"]:
        with self.server:
            yield self


@dataclass
class AgentRun:
    reason: StopReason
    detail: str
    records: list[Record]


class AgentToyRunner:
    """Runs the loop in-process with a real gateway in front of `upstream` (call again to resume)."""

    def __init__(self, tmp_path: Path):
        self.run_dir = tmp_path / "run"
        self.cache_dir = tmp_path / "cache"
        self.run_dir.mkdir(parents=True)
        self.cache_dir.mkdir(parents=True)

    def __call__(self, meta: ScriptedLLM, upstream: AgentUpstream, *, stopper: Stopper | None = None,
                 **kwargs: Any) -> AgentRun:
        config: RunConfig = toy_config(meta.base_url, **kwargs)
        domain = AgentToyDomain(config.domain_config(AgentToyConfig))  # type: ignore[arg-type]
        client = LLMClient(resolve(config.llm, Role.META), config.llm.meta, config.llm.prices)
        spend = RunSpend(self.run_dir, Budget(usd=config.llm.budget_usd, tokens=config.llm.budget_tokens))
        socket_dir = Path(tempfile.mkdtemp(prefix="gw-", dir="/tmp"))  # unix socket paths are short
        try:
            with Gateway(Endpoint(upstream.server.base_url, "sk-test-" + secrets.token_hex(8), "scripted"),
                         socket_dir, config=config.llm.gateway, prices=config.llm.prices, spend=spend) as gateway:
                run = RunContext(run_id="agent-toy", run_dir=self.run_dir, cache_dir=self.cache_dir,
                                 sandbox=None, images=None, gateway=gateway, llm=config.llm,  # type: ignore[arg-type]
                                 limits=config.sandbox)
                reason, detail = Search(domain, config, run, client, stopper=stopper or Stopper(),
                                        spend=spend).run()
        finally:
            shutil.rmtree(socket_dir, ignore_errors=True)
        return AgentRun(reason, detail, load_records(self.run_dir))

    def pending(self) -> list[str]:
        return sorted(p.name for p in (self.run_dir / "pending").glob("*.json"))
