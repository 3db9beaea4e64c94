"""One run's lifetime: run directory, LLM endpoint (embedded server if none is configured),
gateway, sandbox and image builder are opened here, handed to the domain as a RunContext, and
closed here whatever happens. `search` and `resume` both end up in `run_search`.

The caller (the CLI, or a domain's own command) resolves the domain (`engine.domains`) and
hands its class down with the spec that run.json records, so that a resume finds it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import structlog

from engine.config import RunConfig
from engine.llm.client import LLMClient
from engine.llm.config import Role
from engine.llm.endpoint import Endpoint, needs_embedded, resolve
from engine.llm.usage import Budget
from engine.paths import cache_dir
from engine.search import rundir
from engine.search.domain import Domain, RunContext
from engine.search.executor import RemoteOpener, check_executor, open_executor
from engine.search.observer import Observer
from engine.search.spend import RunSpend
from engine.search.stop import Stopper, StopReason

log = structlog.get_logger()


@dataclass
class RunOutcome:
    run_dir: Path
    reason: StopReason
    detail: str
    report: Path | None


def default_run_dir(domain_name: str) -> Path:
    return Path("runs") / f"{domain_name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def run_search(domain_spec: str, domain_cls: type[Domain], config: RunConfig, run_dir: Path, *,
               stopper: Stopper, observer: Observer | None = None,
               on_open: Callable[[RunContext], None] | None = None, remote: RemoteOpener | None = None,
               write_report: bool = True) -> RunOutcome:
    """Open every service of the run, run the loop on `run_dir` (new or half-done), close them,
    and write report.html. `domain_spec` (a registry name or `module:Class`) is what run.json
    records for `domain_cls`. `on_open` sees the RunContext (the CLI uses it to reap on a second
    Ctrl-C). `remote` opens a non-local [executor] (the CLI passes engine.cluster.open_ray)."""
    check_executor(config.executor, remote)
    domain_config = config.domain_config(domain_cls.config_model)
    config = config.model_copy(update={"domain": domain_config.model_dump(mode="json")})
    with rundir.exclusive(run_dir):
        rundir.bind(run_dir, domain_spec, config, domain_config)  # under the lock: a refused run writes nothing
        domain = domain_cls(domain_config)
        with ExitStack() as stack:
            llm = _EmbeddedOnDemand(stack, config)
            spend = RunSpend(run_dir, Budget(usd=config.llm.budget_usd, tokens=config.llm.budget_tokens))
            run = _open_services(stack, domain, config, run_dir, llm, spend)
            if on_open:
                on_open(run)
            client = LLMClient(llm.endpoint_for(Role.META), config.llm.meta, config.llm.prices)
            log.info("run.opened", run_id=run.run_id, domain=domain.name, model=client.endpoint.model,
                     base_url=client.endpoint.base_url)
            executor, run = open_executor(stack, config.executor, run, remote)  # before prepare: it sees the image recipes
            domain.prepare(run)
            from engine.search.loop import Search  # noqa: PLC0415 - keeps `evobox --help` light

            reason, detail = Search(domain, config, run, client, stopper=stopper, observer=observer,
                                    spend=spend, executor=executor).run()
        if reason is StopReason.COMPLETED:  # e.g. ADAS's test split, with this run's services closed
            after = domain.after_search(run_dir, stopper=stopper, observer=observer, on_open=on_open, remote=remote)
            if after is not None:
                reason, detail = after[0], f"{detail}; {after[1]}"
    report = None
    if write_report:
        from engine.search.report import write_report as render  # noqa: PLC0415 - matplotlib is slow to import

        report = render(run_dir, domain)
    return RunOutcome(run_dir, reason, detail, report)


def resume_search(run_dir: Path, domain_cls: type[Domain], overrides: dict[str, object] | None = None,
                  **kwargs: object) -> RunOutcome:
    """Continue a run of `domain_cls` (the class of the spec its run.json records) from its saved
    config (plus overrides such as more generations)."""
    spec = rundir.run_domain_spec(run_dir)
    return run_search(spec, domain_cls, rundir.load_saved_config(run_dir, overrides), run_dir,
                      **kwargs)  # type: ignore[arg-type]


class _EmbeddedOnDemand:
    """The embedded model server, started on first use and stopped with the run."""

    def __init__(self, stack: ExitStack, config: RunConfig):
        self._stack, self._config, self._server = stack, config, None

    def endpoint_for(self, role: Role) -> Endpoint:
        """The role's endpoint, said in the log and on the console (never the key)."""
        llm = self._config.llm
        if needs_embedded(llm, role) and self._server is None:
            from engine.llm.embedded import EmbeddedServer  # noqa: PLC0415 - only when actually used

            self._server = self._stack.enter_context(EmbeddedServer(llm.embedded))
        endpoint = resolve(llm, role, self._server)
        log.info("llm.role", role=role.value, source=endpoint.source.value, base_url=endpoint.base_url,
                 model=endpoint.model)
        return endpoint


def _open_services(stack: ExitStack, domain: Domain, config: RunConfig, run_dir: Path,
                   llm: _EmbeddedOnDemand, spend: RunSpend) -> RunContext:
    from engine.sandbox.images import ImageBuilder  # noqa: PLC0415 - docker only when a run starts
    from engine.sandbox.runner import Sandbox  # noqa: PLC0415

    run_id = rundir.run_id_of(run_dir)
    sandbox = Sandbox(run_id)  # reaps leftovers of this run's earlier, dead processes
    stack.callback(sandbox.close)
    images = ImageBuilder(progress=lambda line: log.info("images.progress", line=line))
    gateway = None
    if domain.needs_gateway:
        from engine.llm.gateway import Gateway  # noqa: PLC0415

        gateway = stack.enter_context(Gateway(llm.endpoint_for(Role.AGENT), run_dir / "gateway",
                                              config=config.llm.gateway, prices=config.llm.prices, spend=spend,
                                              demand=domain.llm_calls_in_flight() * config.search.eval_slots))
    return RunContext(run_id=run_id, run_dir=run_dir, cache_dir=cache_dir(), sandbox=sandbox, images=images,
                      gateway=gateway, llm=config.llm, limits=config.sandbox)
