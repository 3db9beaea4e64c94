"""One candidate from first prompt to archive record: propose, reflect, check, evaluate, repair.

The candidate's state lives in a journal entry, saved after every LLM reply and every attempt,
so the pipeline can be stopped at any step boundary (or killed anywhere) and continued later
from the same state: replies already received are never asked for again.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from engine import pyast
from engine.llm.client import ChatReply, LLMCallError, LLMReplyError
from engine.llm.probe import UpstreamOutage
from engine.llm.usage import Usage
from engine.sandbox.gate import GateError, check_tree
from engine.search.archive import Attempt, Record
from engine.search.candidate import CandidateFailure, Evaluation, Proposal, Status
from engine.search.codeid import code_id
from engine.search.dedupe import Dedupe
from engine.search.domain import CandidateContext, Domain, RunContext
from engine.search.executor import Executor, LocalExecutor
from engine.search.journal import CandidateState, Journal
from engine.search.observer import Observer
from engine.search.proposal import PROPOSAL_SCHEMA, candidate_tree, parse_proposal
from engine.search.shared import SharedEvaluations
from engine.search.slots import OrderedSlots
from engine.search.stop import Limits, Stopped, Stopper, StopReason

if TYPE_CHECKING:
    from engine.llm.client import LLMClient
    from engine.search.baseline_cache import BaselineCache
    from engine.search.spend import RunSpend
    from engine.config import SearchConfig

log = structlog.get_logger()

MAX_ASSISTANT_CHARS = 20_000  # a megabyte reply is kept in the conversation only as its head


@dataclass
class LoopServices:
    """What every candidate of a run shares."""

    domain: Domain
    search: SearchConfig
    client: LLMClient
    journal: Journal
    run: RunContext
    stopper: Stopper
    limits: Limits
    eval_slots: OrderedSlots
    observer: Observer
    baseline_cache: BaselineCache
    spend: RunSpend
    executor: Executor = field(default_factory=LocalExecutor)  # where domain.evaluate runs
    seeds: SeedSwitch = field(default_factory=lambda: SeedSwitch())

    def checkpoint(self, *, llm: bool = True) -> None:
        """Raise Stopped if a stop was requested or a budget is spent. Before an evaluation whose
        proposal is already paid for (`llm=False`) a spent LLM budget is no reason to stop, unless
        evaluations call an LLM themselves (a gateway): then they would only be refused."""
        if self.stopper.reason is None:
            exceeded = self.limits.exceeded()
            if exceeded:
                self.stopper.request(*exceeded)
        reason = self.stopper.reason
        if reason is None or (not llm and reason is StopReason.LLM_BUDGET and self.run.gateway is None):
            return
        raise Stopped(reason.value)


@dataclass
class SeedSwitch:
    """Whether requests carry a sampling seed; off for good once the server rejects one."""

    enabled: bool = True


def request_seed(base: int, generation: int, index: int, turn: int) -> int:
    """The sampling seed of one meta-LLM request: distinct per candidate and turn, the same on
    every rerun, so a server that honours seeds gives reproducible searches."""
    return base + 1_000_003 * generation + 1_009 * index + turn


class StageClock:
    """Accumulates seconds per stage and reports stage changes to the observer."""

    def __init__(self, timings: dict[str, float], report: Callable[[str], None]):
        self._timings = timings
        self._report = report
        self._stage: str | None = None
        self._since = 0.0

    def __call__(self, stage: str) -> None:
        self.stop()
        self._stage, self._since = stage, time.monotonic()
        log.debug("candidate.stage", stage=stage)
        self._report(stage)

    def stop(self) -> None:
        if self._stage is not None:
            elapsed = time.monotonic() - self._since
            self._timings[self._stage] = round(self._timings.get(self._stage, 0.0) + elapsed, 3)
            self._stage = None


class CandidatePipeline:
    """Runs one generated candidate to its final record (or raises Stopped)."""

    def __init__(self, services: LoopServices, state: CandidateState, proposal_prompt: str, dedupe: Dedupe,
                 shared: SharedEvaluations):
        self.s = services
        self.state = state
        self.proposal_prompt = proposal_prompt
        self.dedupe = dedupe
        self.shared = shared
        self.clock = StageClock(state.timings, lambda stage: services.observer.stage(state.slot, stage))
        self.log = log.bind(generation=state.generation, index=state.index)

    # ---- driver --------------------------------------------------------------------------
    def run(self) -> Record:
        st = self.state
        try:
            if st.final is not None:
                return st.final
            if not st.messages:
                st.messages = [{"role": "system", "content": self.s.domain.system_prompt()},
                               {"role": "user", "content": self.proposal_prompt}]
                self._ask("propose")
            reflections = self.s.domain.reflection_prompts()[: self.s.search.reflection_rounds]
            while st.reflections_done < len(reflections):
                st.messages.append({"role": "user", "content": reflections[st.reflections_done]})
                self._ask("reflect")
            while True:
                if st.repair_due:
                    repair = self.s.domain.repair_prompt(st.attempts[-1].error or "")
                    st.messages.append({"role": "user", "content": repair})
                    self._ask("repair")
                attempt, evaluation = self._attempt()
                if evaluation is not None or len(st.attempts) > self.s.search.repair_rounds:
                    return self._finish(attempt, evaluation)  # the attempt and its outcome, in one write
                self.s.journal.save(st)
        finally:
            self.clock.stop()

    # ---- LLM turns -----------------------------------------------------------------------
    def _ask(self, stage: str) -> None:
        """One meta-LLM turn; its reply (usable or not) is absorbed into the state and saved."""
        self.s.checkpoint()
        self.clock(stage)
        st = self.state
        try:
            reply = self._chat()
            text, usage = reply.text, reply.usage
            proposal = parse_proposal(reply.data, max_code_chars=self.s.search.max_code_chars)
            st.proposal, st.reply_error = proposal, None
            st.last_proposal = st.proposal
        except LLMReplyError as exc:
            text, usage = exc.raw_text, exc.usage or Usage()
            self._unusable(stage, exc.reason)
        except CandidateFailure as exc:
            self._unusable(stage, exc.reason)
        st.usage = st.usage + usage
        shown = text if len(text) <= MAX_ASSISTANT_CHARS else text[:MAX_ASSISTANT_CHARS] + "\n[... reply truncated]"
        st.messages.append({"role": "assistant", "content": shown})
        if stage == "reflect":
            st.reflections_done += 1
        st.repair_due = False
        self.clock.stop()
        self.s.journal.save(st)
        self.s.observer.spend(self.s.client.total)

    def _chat(self) -> ChatReply:
        """chat_json with the candidate's seed; a server that refuses `seed` (HTTP 400/422) is
        asked again without it, and no later request sends one."""
        st = self.state
        if self.s.seeds.enabled:
            seed = request_seed(self.s.search.seed, int(st.generation), st.index, len(st.messages))
            try:
                return self.s.client.chat_json(st.messages, schema=PROPOSAL_SCHEMA, seed=seed)
            except LLMCallError as exc:
                if exc.status not in (400, 422):
                    raise
                self.s.seeds.enabled = False
                self.log.warning("search.seed_rejected", status=exc.status, error=str(exc))
        return self.s.client.chat_json(st.messages, schema=PROPOSAL_SCHEMA)

    def _unusable(self, stage: str, reason: str) -> None:
        """A reply without a usable proposal. A bad reflection keeps the proposal it reflected on."""
        self.log.info("candidate.reply_unusable", stage=stage, reason=reason)
        if stage == "reflect" and self.state.proposal is not None:
            return
        self.state.proposal, self.state.reply_error = None, reason

    # ---- attempts ------------------------------------------------------------------------
    def _attempt(self) -> tuple[Attempt, Evaluation | None]:
        """Check and evaluate the current proposal once; the caller journals the outcome (an ok
        attempt saved without its evaluation would, after a kill, be evaluated again and then
        refused as a duplicate of itself)."""
        st = self.state
        started = time.monotonic()
        proposal = st.proposal
        source = pyast.Source.parse(proposal.code) if proposal else None  # the one parse of this attempt
        cid = code_id(source) if source else None
        evaluation: Evaluation | None = None
        agent_before = self.s.spend.agent_of(cid) if cid else None
        try:
            if proposal is None:
                raise CandidateFailure(Status.INVALID, st.reply_error or "the reply held no proposal")
            self.clock("check")
            static_checks(self.s.domain, source)  # type: ignore[arg-type]
            self._dedupe(cid)  # type: ignore[arg-type]
            evaluation = evaluate(self.s, proposal, cid, self.clock,  # type: ignore[arg-type]
                                  st.index, self.shared)
            attempt = Attempt(code_id=cid, name=proposal.name, status=Status.OK)
        except CandidateFailure as failure:
            self.log.info("candidate.attempt_failed", status=failure.status.value, reason=failure.reason)
            attempt = Attempt(code_id=cid, name=proposal.name if proposal else None,
                              status=failure.status, error=failure.reason)
        finally:
            self.clock.stop()
            if cid and agent_before is not None:
                st.agent_usage = st.agent_usage + (self.s.spend.agent_of(cid) - agent_before)
        attempt.seconds = round(time.monotonic() - started, 3)
        st.attempts.append(attempt)
        st.repair_due = evaluation is None and len(st.attempts) <= self.s.search.repair_rounds
        return attempt, evaluation

    def _dedupe(self, cid: str) -> None:
        for number, earlier in enumerate(self.state.attempts, start=1):
            if earlier.code_id == cid:
                raise CandidateFailure(Status.INVALID, "duplicate: the code is identical (ignoring layout and "
                                       f"comments) to your attempt {number}, which failed: {earlier.error}")
        reason = self.dedupe.check(cid)
        if reason:
            raise CandidateFailure(Status.INVALID, reason)

    def _finish(self, attempt: Attempt, evaluation: Evaluation | None) -> Record:
        st = self.state
        shown = st.proposal or st.last_proposal
        record = Record.settle(st.generation, st.index, shown, attempt, evaluation,
                               cid=attempt.code_id if st.proposal is not None else None, parents=st.parents,
                               usage=st.usage, agent_usage=st.agent_usage, timings=st.timings, attempts=st.attempts)
        st.final = record
        self.s.journal.save(st)
        return record


def static_checks(domain: Domain, source: pyast.Source) -> None:
    """Syntax, the engine's gate, then the domain's own checks, on the one tree of `source`;
    CandidateFailure with the first problem in that order. The domain reads the tree before the
    gate does (the gate rewrites it as it checks), but a gate violation is still reported first."""
    tree = candidate_tree(source)
    domain_failure: Exception | None = None
    try:
        domain.check(tree)
    except Exception as exc:  # noqa: BLE001 - raised below unless the gate objects, as if it ran second
        domain_failure = exc
    try:
        check_tree(tree)
    except GateError as exc:
        raise CandidateFailure(Status.INVALID, f"static check: {exc.reason}") from None
    if domain_failure is not None:
        raise domain_failure


def evaluate(s: LoopServices, proposal: Proposal, cid: str, clock: StageClock, order: int,
             shared: SharedEvaluations) -> Evaluation:
    """domain.evaluate in one of the run's evaluation slots (earliest candidate first, by
    `order`), in a fresh candidate directory; code already being evaluated in this generation
    is not evaluated twice (its outcome is shared). An infrastructure failure (anything but the
    candidate's failure, a stop, or an outage already retried by the probe) is retried with
    backoff; the last one propagates and stops the run with the candidate pending."""

    def once() -> Evaluation:
        s.checkpoint(llm=False)
        candidate_dir = s.run.run_dir / "candidates" / cid
        if candidate_dir.exists():  # left by an evaluation killed before it finished, or by a failed try
            shutil.rmtree(candidate_dir)
        candidate_dir.mkdir(parents=True)
        (candidate_dir / "code.py").write_text(proposal.code)
        clock("evaluate")
        ctx = CandidateContext(run=s.run, candidate_id=cid, candidate_dir=candidate_dir, stage=clock,
                               log=log.bind(candidate=cid))
        return s.executor.evaluate(s.domain, proposal, ctx)

    def own() -> Evaluation:
        clock("queue")
        with s.eval_slots.hold(order):
            return infrastructure_retry(s.stopper, cid)(once)

    return shared.run(cid, own, wait=lambda: clock("evaluate (shared)"))


INFRA_ATTEMPTS = 3  # tries of one evaluation whose environment broke (Docker engine, gateway)
INFRA_BACKOFF_S = 2.0  # first wait between them; doubles, capped at a minute


def is_infrastructure(exc: BaseException) -> bool:
    """Not the candidate's failure, not a stop, and not an outage the probe already retried."""
    return isinstance(exc, Exception) and not isinstance(exc, (CandidateFailure, Stopped, UpstreamOutage))


def infrastructure_retry(stopper: Stopper, cid: str) -> Retrying:
    """tenacity policy for one evaluation: retry infrastructure failures while no stop is requested."""

    def note(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("candidate.infrastructure_retry", candidate=cid, attempt=state.attempt_number,
                    error=f"{type(error).__name__}: {error}")

    return Retrying(stop=stop_after_attempt(INFRA_ATTEMPTS),
                    wait=wait_exponential(multiplier=INFRA_BACKOFF_S, max=60.0),
                    retry=retry_if_exception(lambda exc: is_infrastructure(exc) and stopper.reason is None),
                    before_sleep=note, reraise=True)
