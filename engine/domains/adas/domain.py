"""ADAS: agents (`forward(self, taskInfo)`) discovered by a meta LLM, each evaluated in its own
container. Questions go in, answers come out, the engine scores them here (gold answers never
enter the container)."""

from __future__ import annotations

import ast
import json
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from benchmarks.adas import BootstrapResult, Task, bootstrap_fitness, load_tasks, spec_for
from benchmarks.adas.registry import Benchmark
from engine.domains.adas import final_test, prompts
from engine.domains.adas.baselines import baselines
from engine.domains.adas.config import AdasConfig
from engine.search.candidate import CandidateFailure, Evaluation, Proposal, Status
from engine.search.domain import CandidateContext, Domain, RunContext
from engine.search.stop import StopReason
from engine.task_secret import TaskSecret

RUNTIME = "adas"
LAYER_KIND = "adas-candidate"
BOX_FILES = ("__init__.py", "framework.py", "backend.py", "harness.py")
ANSWERS_MAX_BYTES = 32 * 1024 * 1024
SELFTEST_MAX_BYTES = 64 * 1024
EVALUATION_FIELDS = {"benchmark", "split", "n_questions", "languages", "source", "data_dir", "repeats", "arc_max_side",
                     "seed", "question_timeout_s", "agent_max_tokens", "max_llm_calls", "max_llm_tokens",
                     "bootstrap_resamples", "min_accuracy"}
STUB_ANSWERS: dict[Benchmark, Any] = {Benchmark.MGSM: "0", Benchmark.DROP: "stub answer", Benchmark.MMLU: "A",
                                      Benchmark.GPQA: "A", Benchmark.ARC: [[0]]}


def box_files(code: str) -> dict[str, bytes]:
    """What the candidate layer adds under /opt/evobox: framework, gateway client, agent code."""
    box = resources.files("engine.domains.adas.box")
    files = {f"adas_box/{name}": box.joinpath(name).read_bytes() for name in BOX_FILES}
    files["evobox_llm.py"] = resources.files("engine.llm").joinpath("box_client.py").read_bytes()
    files["agent.py"] = code.encode("utf-8")
    return files


def check_forward(code: str) -> None:
    """Static check: the code parses and defines forward(self, taskInfo) (or one such function)."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise CandidateFailure(Status.INVALID, f"SyntaxError: {exc.msg} (line {exc.lineno})") from None
    functions = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    chosen = next((f for f in functions if f.name == "forward"), functions[0] if len(functions) == 1 else None)
    if chosen is None:
        names = ", ".join(f.name for f in functions) or "none"
        raise CandidateFailure(Status.INVALID, f"define one function forward(self, taskInfo) (found: {names})")
    if isinstance(chosen, ast.AsyncFunctionDef):
        raise CandidateFailure(Status.INVALID, f"{chosen.name} must be a plain def, not async")
    args = chosen.args
    if len(args.posonlyargs) + len(args.args) != 2 or args.vararg or args.kwonlyargs:
        raise CandidateFailure(Status.INVALID, f"{chosen.name} must take exactly (self, taskInfo)")


def score_answers(tasks: list[Task], answers: dict[str, Any], benchmark: Benchmark) -> tuple[list[float], list[str]]:
    """Per-question scores (missing or junk answers score 0) and the per-question errors."""
    score = spec_for(benchmark).score
    scores, errors = [], []
    for task in tasks:
        entry = answers.get(task.id)
        entry = entry if isinstance(entry, dict) else {}
        try:
            scores.append(float(score(entry.get("answer", ""), task.gold)))
        except (TypeError, ValueError, AttributeError):
            scores.append(0.0)
        if entry.get("error"):
            errors.append(str(entry["error"])[:300])
    return scores, errors


class AdasDomain(Domain):
    """Meta Agent Search (Hu et al., 2024) with one hardened container per agent."""

    name: ClassVar[str] = "adas"
    config_model: ClassVar[type[AdasConfig]] = AdasConfig
    needs_gateway: ClassVar[bool] = True
    function_hint: ClassVar[str] = "forward"
    config: AdasConfig

    def __init__(self, config: AdasConfig):
        super().__init__(config)
        self._tasks: list[Task] | None = None
        self._runtime: str | None = None
        self._agent_model = ""
        self._secret: TaskSecret | None = None  # keys GPQA's option order (set in prepare)

    # ---- prompts -------------------------------------------------------------------------
    def system_prompt(self) -> str:
        return prompts.SYSTEM

    def proposal_prompt(self, archive_text: str) -> str:
        return prompts.proposal_prompt(self.config.benchmark, self.config.prompt_style, archive_text)

    def reflection_prompts(self) -> list[str]:
        return [prompts.REFLECTION_1, prompts.REFLECTION_2]

    def repair_prompt(self, error: str) -> str:
        return prompts.repair_prompt(error)

    # ---- candidates ----------------------------------------------------------------------
    def baselines(self) -> list[Proposal]:
        """Hand-written baselines, plus the best agents of another run when transferring."""
        chosen = baselines(self.config.baselines)
        if self.config.agents_from:
            from engine.domains.adas.transfer import best_agents  # noqa: PLC0415

            chosen += best_agents(Path(self.config.agents_from), self.config.top_k)
        return chosen

    def check(self, code: str) -> None:
        check_forward(code)

    def evaluation_key(self) -> str:
        """What a score depends on: data, split, budgets, bootstrap and the agents' model (not the
        prompt style, the baseline list or the container's CPU share)."""
        setting = self.config.model_dump(mode="json", include=EVALUATION_FIELDS)
        key: dict[str, Any] = {"setting": setting, "agent_model": self._agent_model}
        if spec_for(self.config.benchmark).secret_order:  # another secret, another option order
            key["task_secret"] = self._secret.fingerprint if self._secret else ""
        return json.dumps(key, sort_keys=True)

    def after_search(self, run_dir: Path, **run_kwargs: Any) -> tuple[StopReason, str] | None:
        """The best agents and the best baseline on the test split (final_test.py)."""
        return final_test.run_final_test(run_dir, self.config, **run_kwargs)

    def report_lead(self, run_dir: Path) -> str:
        return final_test.lead_html(run_dir, self.config)

    @classmethod
    def cli_commands(cls) -> Any:
        from engine.domains.adas.transfer import cli_app  # noqa: PLC0415  (typer only for the CLI)

        return cli_app

    def tasks(self) -> list[Task]:
        """The evaluation questions (loaded once; the engine keeps the gold answers)."""
        if self._tasks is None:
            c = self.config
            self._tasks = load_tasks(c.benchmark, c.split, source=c.source, data_dir=c.data_dir,
                                     limit=c.n_questions or None, languages=c.languages, seed=c.seed,
                                     repeats=c.repeats, arc_max_side=c.arc_max_side,
                                     order_secret=self._secret.derive("adas-option-order") if self._secret else None)
        return self._tasks

    def prepare(self, run: RunContext) -> None:
        self._runtime = run.images.runtime(RUNTIME)
        upstream = getattr(run.gateway, "upstream", None)  # the model the agents really get
        self._agent_model = upstream.model if upstream is not None else (run.llm.agent.model or "")
        self._secret = TaskSecret.load(run.cache_dir)
        self.tasks()

    # ---- evaluation ----------------------------------------------------------------------
    def evaluate(self, proposal: Proposal, ctx: CandidateContext) -> Evaluation:
        from engine.domains.adas.evaluation import CandidateRun  # noqa: PLC0415  (docker only when evaluating)

        if self._runtime is None:
            self.prepare(ctx.run)
        assert self._runtime is not None
        tasks = self.tasks()
        run = CandidateRun(self.config, ctx, self._runtime, proposal.code, STUB_ANSWERS[self.config.benchmark])
        answers = run.run(tasks)
        try:
            evaluation = self.score(tasks, answers, ctx)
        except CandidateFailure as failure:
            failure.detail["agent_llm"] = run.usage
            raise
        evaluation.detail["agent_llm"] = run.usage
        return evaluation

    def score(self, tasks: list[Task], answers: dict[str, Any], ctx: CandidateContext | None = None) -> Evaluation:
        """Scores outside the container → bootstrap fitness; 'All 0 accuracy' is a failure."""
        scores, errors = score_answers(tasks, answers, self.config.benchmark)
        mean = sum(scores) / len(scores)
        common = Counter(errors).most_common(3)
        if mean < self.config.min_accuracy:
            hint = f"; {len(errors)}/{len(tasks)} questions failed, most often: {common[0][0]}" if common else ""
            raise CandidateFailure(Status.FAILED, f"All 0 accuracy (mean score {mean:.1%}){hint}",
                                   {"scores": dict(zip((t.id for t in tasks), scores)), "errors": common})
        result: BootstrapResult = bootstrap_fitness(scores, seed=self.config.seed,
                                                    resamples=self.config.bootstrap_resamples)
        detail = {"benchmark": self.config.benchmark.value, "split": self.config.split.value, "n": len(scores),
                  "mean": result.mean, "ci_low": result.low, "ci_high": result.high,
                  "scores": dict(zip((t.id for t in tasks), scores)),
                  "failed_questions": len(errors), "common_errors": common}
        if ctx is not None:
            ctx.log.info("adas.scored", n=len(scores), mean=round(result.mean, 2), median=round(result.median, 2),
                         failed_questions=len(errors))
        return Evaluation(fitness=result.median, fitness_text=result.text, detail=detail)
