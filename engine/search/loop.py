"""The generic discovery loop: baselines, then generations of LLM-written candidates.

Order is deterministic whatever the parallelism: every candidate of generation g is prompted
with the archive as it stood when g began (all earlier generations), and records are appended
in candidate order, a finished later candidate waiting in the journal for the earlier ones.
Proposals of later candidates overlap evaluations of earlier ones (eval_slots + 1 workers, at
most eval_slots evaluating).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import structlog

from engine import pyast
from engine.config import RunConfig
from engine.llm.client import LLMClient
from engine.llm.usage import Budget, Usage
from engine.search import rundir
from engine.search.archive import ARCHIVE_NAME, Archive, Attempt, Generation, Record
from engine.search.baseline_cache import BaselineCache
from engine.search.candidate import CandidateFailure, Evaluation, Proposal, Status
from engine.search.codeid import code_id
from engine.search.dedupe import Dedupe, as_duplicate
from engine.search.domain import Domain, RunContext
from engine.search.executor import Executor, LocalExecutor
from engine.search.journal import CandidateState, Journal
from engine.search.observer import Observer
from engine.search.pipeline import CandidatePipeline, LoopServices, StageClock, evaluate, static_checks
from engine.search.prompting import as_text, select
from engine.search.shared import SharedEvaluations
from engine.search.slots import OrderedSlots
from engine.search.spend import RunSpend
from engine.search.stop import Limits, Stopped, Stopper, StopReason

log = structlog.get_logger()



class Search:
    """One run of the loop over a run directory; `run()` may be called on a fresh or a
    half-done directory and continues where the archive and the journal say it stopped."""

    def __init__(self, domain: Domain, config: RunConfig, run: RunContext, client: LLMClient, *,
                 stopper: Stopper, observer: Observer | None = None, spend: RunSpend | None = None,
                 executor: Executor | None = None):
        self.domain = domain
        self.config = config
        self.search = config.search
        self.run_ctx = run
        self.client = client
        self.stopper = stopper
        self.observer = observer or Observer()
        self.archive = Archive(run.run_dir / ARCHIVE_NAME)
        self.journal = Journal(run.run_dir)
        budget = Budget(usd=config.llm.budget_usd, tokens=config.llm.budget_tokens)
        self.spend = spend or RunSpend(run.run_dir, budget)  # the runner passes the one its gateway reports to
        self.executor = executor or LocalExecutor()

    def run(self) -> tuple[StopReason, str]:
        """Run until every generation is done or a stop is requested; say why it ended."""
        archived = self.archive.slots()
        for slot in self.journal.slots():
            if slot in archived:  # killed between the append and the journal cleanup
                self.journal.remove(slot)
        services = self._services()
        self.observer.run_started(self.search.generations, self.search.candidates_per_generation,
                                  self.archive.records)
        log.info("search.started", run_dir=str(self.run_ctx.run_dir), domain=self.domain.name,
                 archived=len(archived), pending=len(self.journal.slots()))
        try:
            self._baselines(services)
            for generation in range(1, self.search.generations + 1):
                if self.stopper.reason is not None:
                    break
                self._generation(services, generation)
        except Exception as exc:  # infrastructure: the run stops, its candidate stays in the journal
            log.exception("search.infrastructure_error", error=str(exc))
            self.stopper.request(StopReason.ERROR, f"{type(exc).__name__}: {exc}")
        self._save_clock(services)
        reason = self.stopper.reason or StopReason.COMPLETED
        detail = self.stopper.detail or f"{self.search.generations} generations done"
        log.info("search.finished", reason=reason.value, detail=detail, archived=len(self.archive.records))
        self.observer.run_finished(reason.value, detail)
        return reason, detail

    # ---- setup ---------------------------------------------------------------------------
    def _services(self) -> LoopServices:
        spent = Usage()
        for record in self.archive.records:
            spent = spent + record.usage
        for slot in self.journal.slots():
            state = self.journal.load(slot)
            if state is not None:
                spent = spent + state.usage
        self.spend.set_meta(spent, lambda: self.client.total)
        self.spend.on_spent = lambda reason: self.stopper.request(StopReason.LLM_BUDGET, reason)
        return LoopServices(
            domain=self.domain, search=self.search, client=self.client, journal=self.journal, run=self.run_ctx,
            stopper=self.stopper, limits=Limits(self.search.wall_time_s, self.spend, rundir.elapsed_before(self.run_ctx.run_dir)),
            eval_slots=OrderedSlots(self.search.eval_slots), observer=self.observer,
            baseline_cache=BaselineCache(self.run_ctx.cache_dir, self.domain.name, self.domain.evaluation_key()),
            spend=self.spend, executor=self.executor)

    def _save_clock(self, services: LoopServices) -> None:
        rundir.save_clock(self.run_ctx.run_dir, services.limits.elapsed_s())

    # ---- generations ---------------------------------------------------------------------
    def _baselines(self, services: LoopServices) -> None:
        baselines, shared = self.domain.baselines(), SharedEvaluations()
        self._run_slots(services, "initial", len(baselines),
                        lambda index: self._baseline(services, index, baselines[index], shared))

    def _generation(self, services: LoopServices, generation: int) -> None:
        earlier = [r for r in self.archive.records if r.generation != generation]
        dedupe, shared = Dedupe(earlier), SharedEvaluations()
        shown = select(earlier, self.search.archive_prompt_chars)
        prompt = self.domain.proposal_prompt(as_text(shown))
        parents = [r.id for r in shown]

        def job(index: int) -> Record:
            state = self.journal.load((generation, index))
            if state is None:
                state = CandidateState(generation=generation, index=index, parents=parents)
            if state.final is None:
                services.checkpoint()
            return CandidatePipeline(services, state, prompt, dedupe, shared).run()

        self._run_slots(services, generation, self.search.candidates_per_generation, job)

    def _run_slots(self, services: LoopServices, generation: Generation, count: int,
                   job: Callable[[int], Record]) -> None:
        """Run the unarchived slots of one generation in parallel and append in slot order."""
        done = self.archive.slots()
        todo = [index for index in range(count) if (generation, index) not in done]
        if not todo:
            return
        self.observer.generation_started(generation)
        log.info("search.generation", generation=generation, candidates=len(todo))
        failure: BaseException | None = None
        in_order = True
        workers = min(len(todo), self.search.eval_slots + 1)
        with ThreadPoolExecutor(workers, thread_name_prefix=f"evobox-{generation}") as pool:
            futures: list[Future[Record]] = [pool.submit(job, index) for index in todo]
            for future in futures:
                try:
                    record = future.result()
                except Stopped:
                    in_order = False
                    continue
                except Exception as exc:  # re-raised below, once every worker has returned
                    self.stopper.request(StopReason.ERROR, f"{type(exc).__name__}: {exc}")
                    failure = failure or exc
                    in_order = False
                    continue
                if in_order:  # a later record waits in the journal until the earlier ones are in
                    self._commit(record)
                    self._save_clock(services)
        if failure is not None:
            raise failure

    def _commit(self, record: Record) -> None:
        record = as_duplicate(record, [r for r in self.archive.records if r.generation == record.generation])
        self.archive.append(record)
        self.journal.remove(record.slot)
        log.info("candidate.archived", generation=record.generation, index=record.index, id=record.id,
                 name=record.name, status=record.status.value, fitness=record.fitness, error=record.error)
        self.observer.candidate_finished(record)

    # ---- baselines -----------------------------------------------------------------------
    def _baseline(self, services: LoopServices, index: int, proposal: Proposal, shared: SharedEvaluations) -> Record:
        """Evaluate (or reuse the cached evaluation of) one hand-written baseline."""
        state = self.journal.load(("initial", index))
        if state is not None and state.final is not None:
            return state.final
        services.checkpoint(llm=False)
        state = CandidateState(generation="initial", index=index)
        clock = StageClock(state.timings, lambda stage: self.observer.stage(("initial", index), stage))
        source = pyast.Source.parse(proposal.code)
        cid = code_id(source)
        evaluation: Evaluation | None = services.baseline_cache.get(cid)
        cached = evaluation is not None
        failure: CandidateFailure | None = None
        agent_before = services.spend.agent_of(cid)
        if evaluation is None:
            try:
                clock("check")
                static_checks(self.domain, source)
                evaluation = evaluate(services, proposal, cid, clock, index, shared)
                services.baseline_cache.put(cid, evaluation)
            except CandidateFailure as exc:
                failure = exc
            finally:
                clock.stop()
        attempt = Attempt(code_id=cid, name=proposal.name, status=failure.status if failure else Status.OK,
                          error=failure.reason if failure else None)
        state.final = Record.settle("initial", index, proposal, attempt, evaluation, cid=cid, timings=state.timings,
                                    agent_usage=services.spend.agent_of(cid) - agent_before, attempts=[attempt],
                                    cached=cached)
        self.journal.save(state)
        return state.final
