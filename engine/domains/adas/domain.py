"""ADAS: agents (`forward(self, taskInfo)`) discovered by a meta LLM, each evaluated in its own
container. Questions go in, answers come out, the engine scores them here (gold answers never
enter the container)."""

from __future__ import annotations

import ast
import json
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from engine.domains.adas import final_test, prompts, transfer
from engine.domains.adas.benchmarks import BootstrapResult, Task, bootstrap_fitness, load_tasks, spec_for
from engine.domains.adas.benchmarks.registry import Benchmark
from engine.domains.adas.config import AdasConfig
from engine.domains.adas.evaluation import CandidateRun
from engine.sandbox.limits import SandboxLimits
from engine.search.candidate import CandidateFailure, Evaluation, Proposal, Status
from engine.search.domain import CandidateContext, Domain, RunCommand, RunContext
from engine.search.proposal import candidate_tree
from engine.search.stop import StopReason
from engine.task_secret import TaskSecret

RUNTIME = "adas"
EVALUATION_FIELDS = {"benchmark", "split", "n_questions", "languages", "source", "data_dir", "repeats", "arc_max_side",
                     "seed", "question_timeout_s", "agent_max_tokens", "llm_calls_per_question",
                     "llm_tokens_per_question", "bootstrap_resamples", "min_accuracy"}
BUDGET_ERROR = "BudgetSpent:"  # how the harness reports a call the gateway refused for the budget
COMMON_ERRORS = 3  # distinct per-question errors named in a failure reason
ERROR_CHARS = 160  # each one truncated to this


def check_forward(code: str | ast.Module) -> None:
    """Static check: the code parses and defines forward(self, taskInfo) (or one such function)."""
    tree = candidate_tree(code)
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
        entry = _entry(answers, task.id)
        try:
            scores.append(float(score(entry.get("answer", ""), task.gold)))
        except (TypeError, ValueError, AttributeError):
            scores.append(0.0)
        if entry.get("error"):
            errors.append(str(entry["error"])[:300])
    return scores, errors


def errors_summary(errors: list[str], questions: int) -> str:
    """'3/4 questions failed, most often: E1 [2x]; E2 [1x]': what a repair can act on."""
    if not errors:
        return ""
    counted = Counter(" ".join(error.split())[:ERROR_CHARS] for error in errors).most_common(COMMON_ERRORS)
    return f"{len(errors)}/{questions} questions failed, most often: " + "; ".join(
        f"{error} [{count}x]" for error, count in counted)


def answers_summary(tasks: list[Task], answers: dict[str, Any], benchmark: Benchmark) -> str:
    """What the answers looked like: the most common ones (not for a benchmark whose items stay
    private: an answer may quote its question) and the format the scorer expects."""
    spec = spec_for(benchmark)
    shown = "" if spec.sensitive else ", most often " + ", ".join(
        f"{json.dumps(text)} [{count}x]"
        for text, count in Counter(_answer_text(_entry(answers, t.id)) for t in tasks).most_common(COMMON_ERRORS))
    return f"answers scored 0{shown}; expected: {spec.answer_hint}"


def _entry(answers: dict[str, Any], task_id: str) -> dict[str, Any]:
    """One question's entry from the container's answers; anything malformed counts as empty."""
    entry = answers.get(task_id)
    return entry if isinstance(entry, dict) else {}


def _answer_text(entry: dict[str, Any]) -> str:
    answer = entry.get("answer", "")
    text = answer if isinstance(answer, str) else json.dumps(answer, default=str)
    return " ".join(text.split())[:60]


def budget_failure(spent: str, tasks: list[Task], answers: dict[str, Any]) -> CandidateFailure:
    """A candidate whose gateway budget ran out: its score would measure the budget, not the agent."""
    errors = [str(_entry(answers, t.id)["error"]) for t in tasks if _entry(answers, t.id).get("error")]
    why = errors_summary(errors, len(tasks))
    return CandidateFailure(Status.FAILED, f"LLM budget spent: {spent} before the evaluation ended; "
                                           f"design the agent to make fewer or shorter LLM calls per question"
                                           + (f"; {why}" if why else ""), {"budget": spent})


def budget_refused(tasks: list[Task], answers: dict[str, Any]) -> bool:
    """Whether the gateway refused a question's call for the budget (also when a prompt was larger
    than the tokens left, before the budget was reached)."""
    return any(str(_entry(answers, t.id).get("error") or "").startswith(BUDGET_ERROR) for t in tasks)


class AdasDomain(Domain):
    """Meta Agent Search (Hu et al., 2024) with one hardened container per agent."""

    name: ClassVar[str] = "adas"
    config_model: ClassVar[type[AdasConfig]] = AdasConfig
    needs_gateway: ClassVar[bool] = True
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
        return transfer.initial_agents(self.config)

    def check(self, tree: ast.Module) -> None:
        check_forward(tree)

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
        return final_test.run_final_test(type(self), run_dir, self.config, **run_kwargs)

    def llm_calls_in_flight(self) -> int:
        return self.config.threads  # each question thread waits on one call at a time

    def report_lead(self, run_dir: Path) -> str:
        return final_test.lead_html(run_dir, self.config)

    @classmethod
    def cli_commands(cls, run: RunCommand) -> Any:
        return transfer.cli_commands(cls, run)

    def tasks(self) -> list[Task]:
        """The evaluation questions (loaded once; the engine keeps the gold answers)."""
        if self._tasks is None:
            c = self.config
            self._tasks = load_tasks(c.benchmark, c.split, source=c.source, data_dir=c.data_dir,
                                     limit=c.n_questions or None, languages=c.languages, seed=c.seed,
                                     repeats=c.repeats, arc_max_side=c.arc_max_side,
                                     order_secret=self._secret.derive("adas-option-order") if self._secret else None)
        return self._tasks

    def resource_limits(self, run: RunContext) -> SandboxLimits:
        return run.limits.model_copy(update={"cpus": self.config.cpus, "memory_bytes": self.config.memory})

    def prepare(self, run: RunContext) -> None:
        self._runtime = run.images.runtime(RUNTIME)
        upstream = getattr(run.gateway, "upstream", None)  # the model the agents really get
        self._agent_model = upstream.model if upstream is not None else (run.llm.agent.model or "")
        self._secret = TaskSecret.load(run.cache_dir)
        self.tasks()

    # ---- evaluation ----------------------------------------------------------------------
    def evaluate(self, proposal: Proposal, ctx: CandidateContext) -> Evaluation:
        if self._runtime is None:
            self.prepare(ctx.run)
        assert self._runtime is not None
        tasks = self.tasks()
        run = CandidateRun(self.config, ctx, self._runtime, proposal.code)
        answers = run.run(tasks)
        try:
            if run.budget_spent or budget_refused(tasks, answers):
                raise budget_failure(run.budget_spent or "the agent LLM tokens left were too few for a call",
                                     tasks, answers)
            evaluation = self.score(tasks, answers, ctx)
        except CandidateFailure as failure:
            failure.detail["agent_llm"] = run.usage.to_json()
            raise
        evaluation.detail["agent_llm"] = run.usage.to_json()
        return evaluation

    def score(self, tasks: list[Task], answers: dict[str, Any], ctx: CandidateContext | None = None) -> Evaluation:
        """Scores outside the container → bootstrap fitness; 'All 0 accuracy' is a failure."""
        scores, errors = score_answers(tasks, answers, self.config.benchmark)
        mean = sum(scores) / len(scores)
        common = Counter(errors).most_common(COMMON_ERRORS)
        if mean < self.config.min_accuracy:
            answered = [t for t in tasks if not _entry(answers, t.id).get("error")]
            parts = [errors_summary(errors, len(tasks)),
                     answers_summary(answered, answers, self.config.benchmark) if answered else ""]
            why = "; ".join(part for part in parts if part)
            raise CandidateFailure(Status.FAILED, f"All 0 accuracy (mean score {mean:.1%}); {why}",
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
