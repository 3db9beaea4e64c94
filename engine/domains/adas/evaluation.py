"""One candidate's trip through the sandbox: build its layer, unit-test it against the stub LLM,
then answer the questions through the gateway (that container starts during the unit test and
waits for its verdict). Returns the raw answers; scoring is elsewhere."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from engine.domains import kit
from engine.domains.adas.benchmarks import Task, spec_for
from engine.domains.adas.config import AdasConfig
from engine.llm.gateway import Grant
from engine.llm.usage import Usage
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.results import ResultModel
from engine.sandbox.runner import RunResult, Stage
from engine.search.candidate import CandidateFailure, Status
from engine.search.domain import CandidateContext
from engine.search.settle import settle_grant

HARNESS = ["python3", "-m", "adas_box.harness"]
LAYER_KIND = "adas-candidate"
BOX_FILES = ("__init__.py", "framework.py", "backend.py", "stub.py", "harness.py")
ANSWERS_MAX_BYTES = 32 * 1024 * 1024
SELFTEST_MAX_BYTES = 64 * 1024
STARTUP_S = 30.0  # container start and interpreter import, on a busy 2-core machine
SELFTEST_TRIES = 2  # a failed sample is run again with the other shape of stub replies
RELEASE_FILE = "release"  # the engine's verdict on the unit test, awaited by the evaluation harness


def box_files(code: str) -> dict[str, bytes]:
    """What the candidate layer adds under /opt/evobox: framework, gateway client, agent code."""
    box = resources.files("engine.domains.adas.box")
    files = {f"adas_box/{name}": box.joinpath(name).read_bytes() for name in BOX_FILES}
    files["evobox_llm.py"] = resources.files("engine.llm").joinpath("box_client.py").read_bytes()
    files["agent.py"] = code.encode("utf-8")
    return files


def budget_spent(calls: int, tokens: int, config: AdasConfig, questions: int) -> str | None:
    """Which of the candidate's gateway budgets ran out, in words, or None. The gateway refuses a
    call only once a budget is reached, so reaching it is what can cut questions short."""
    max_calls, max_tokens = config.llm_budget(questions)
    if calls >= max_calls:
        return (f"{calls} of {max_calls} agent LLM calls ({config.llm_calls_per_question} per question "
                f"x {questions} questions) were used up")
    if tokens >= max_tokens:
        return (f"{tokens:,} of {max_tokens:,} agent LLM tokens ({config.llm_tokens_per_question:,} per question "
                f"x {questions} questions) were used up")
    return None


class SelftestReport(ResultModel):
    """/out/selftest.json of the harness's unit test."""

    ok: bool
    reason: str | None = None


class AnswersReport(ResultModel):
    """/out/answers.json: per question id, {"answer": ..., "error": ...}. Entries stay loose on
    purpose: a junk entry scores 0 for that question (score_answers), it does not void the rest."""

    load_error: str | None = None
    answers: dict[str, Any]


class CandidateRun:
    """Build → selftest (stub LLM, no gateway) → evaluate (gateway grant) for one agent."""

    def __init__(self, config: AdasConfig, ctx: CandidateContext, runtime: str, code: str):
        self.config, self.ctx, self.runtime, self.code = config, ctx, runtime, code
        self.dir = ctx.candidate_dir
        self.usage = Usage()  # the agent's LLM spend, filled by the evaluation
        self.budget_spent: str | None = None  # which budget ran out during the evaluation, if one did

    def run(self, tasks: list[Task]) -> dict[str, Any]:
        """Build, unit-test, evaluate. No agent code runs and no LLM call is made before the unit
        test has passed: the evaluation harness reads nothing of the agent until the engine
        writes `go` to /in/release (`stop` after a failed unit test)."""
        if self.ctx.run.gateway is None:
            raise RuntimeError("the ADAS domain needs the LLM gateway (needs_gateway=True)")
        self.ctx.stage("build")
        image = kit.candidate_image(self.ctx, self.runtime, box_files(self.code), kind=LAYER_KIND)
        in_dir = self._write_inputs(tasks)
        self.ctx.stage("test")
        max_calls, max_tokens = self.config.llm_budget(len(tasks))
        # the grant is revoked when the block ends, however it ends: its token dies with this evaluation
        with self.ctx.run.gateway.grant(self.ctx.candidate_id, transcript=self.dir / "llm_transcript.jsonl",
                                        max_calls=max_calls, max_tokens=max_tokens) as grant:
            if self.ctx.run.sandbox.live_inputs:
                result = self._overlapped(image, in_dir, len(tasks), grant)
            else:  # /in reaches the container once, at its start: the verdict must be in it by then
                self._selftest(image, in_dir)
                _release(in_dir, "go")
                self.ctx.stage("evaluate")
                result = self._evaluate_container(image, in_dir, len(tasks), grant)
        return self._answers(result, grant.token, len(tasks))

    def _overlapped(self, image: str, in_dir: Path, questions: int, grant: Grant) -> RunResult:
        """The evaluation's container starts while the unit test runs, and waits for the verdict:
        its start (container, interpreter, imports: ~1 s) overlaps the unit test."""
        with ThreadPoolExecutor(1, thread_name_prefix="adas-evaluate") as pool:
            evaluation = pool.submit(self._evaluate_container, image, in_dir, questions, grant)
            try:
                self._selftest(image, in_dir)
            except BaseException:
                _release(in_dir, "stop")
                evaluation.result()  # the harness exits at `stop`: its container is gone before we go on
                raise
            _release(in_dir, "go")
            self.ctx.stage("evaluate")
            return evaluation.result()

    def _limits(self, timeout_s: float) -> SandboxLimits:
        c = self.config
        return self.ctx.run.limits.model_copy(update={"timeout_s": timeout_s, "memory_bytes": c.memory,
                                                      "cpus": c.cpus, "pids": c.pids, "gpus": 0})

    def _write_inputs(self, tasks: list[Task]) -> Path:
        """/in: the harness settings and the questions (Task.public(): no gold answer)."""
        c = self.config
        in_dir = self.dir / "in"
        in_dir.mkdir(parents=True, exist_ok=True)
        settings = {"answer_hint": spec_for(c.benchmark).answer_hint, "benchmark": c.benchmark.value,
                    "release_file": f"/in/{RELEASE_FILE}",
                    "max_tokens": c.agent_max_tokens, "threads": c.threads,
                    "question_timeout_s": c.question_timeout_s, "deadline_s": c.harness_deadline_s(len(tasks)),
                    "selftest_questions": c.selftest_questions, "selftest_timeout_s": c.selftest_timeout_s}
        (in_dir / "config.json").write_text(json.dumps(settings), encoding="utf-8")
        (in_dir / "questions.json").write_text(json.dumps([t.public() for t in tasks]), encoding="utf-8")
        return in_dir

    def _selftest(self, image: str, in_dir: Path) -> None:
        """Unit test in the candidate's container against the stub LLM: no gateway, no cost."""
        c = self.config
        limits = self._limits(SELFTEST_TRIES * c.selftest_questions * c.selftest_timeout_s + STARTUP_S)
        out_dir = self.dir / "selftest_out"
        out_dir.mkdir(parents=True, exist_ok=True)
        result = kit.run_stage(self.ctx, image, [*HARNESS, Stage.SELFTEST.value], stage=Stage.SELFTEST, limits=limits,
                               in_dir=in_dir, out_dir=out_dir)
        report = kit.collect(result, out_dir, "selftest.json", SelftestReport, max_bytes=SELFTEST_MAX_BYTES,
                             what="unit test").require()
        if not report.ok:
            raise CandidateFailure(Status.FAILED, f"unit test: {report.reason}"[:500])

    def _evaluate_limits(self, questions: int) -> SandboxLimits:
        c = self.config
        waiting = SELFTEST_TRIES * c.selftest_questions * c.selftest_timeout_s + STARTUP_S  # the unit test's limit
        return self._limits(c.harness_deadline_s(questions) + STARTUP_S + waiting)

    def _evaluate_container(self, image: str, in_dir: Path, questions: int, grant: Grant) -> RunResult:
        out_dir = self.dir / "out"
        out_dir.mkdir(parents=True, exist_ok=True)
        return kit.run_stage(self.ctx, image, [*HARNESS, Stage.EVALUATE.value], stage=Stage.EVALUATE,
                             limits=self._evaluate_limits(questions), in_dir=in_dir, out_dir=out_dir,
                             mounts=[grant.mount], env=grant.env)

    def _answers(self, result: RunResult, token: str, questions: int) -> dict[str, Any]:
        c, run = self.config, self.ctx.run
        assert run.gateway is not None
        usage = self.usage = run.gateway.usage(token)
        self.budget_spent = budget_spent(usage.calls, usage.total_tokens, c, questions)
        self.ctx.log.info("adas.evaluated", seconds=round(result.duration_s, 1), calls=usage.calls,
                          prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
        settle_grant(run.gateway, token)  # an outage or a spent run budget is not the agent's failure
        report = kit.collect(result, self.dir / "out", "answers.json", AnswersReport, max_bytes=ANSWERS_MAX_BYTES,
                             what="evaluation").require()
        if report.load_error:
            raise CandidateFailure(Status.INVALID, report.load_error[:300])
        return report.answers


def _release(in_dir: Path, verdict: str) -> None:
    """Tell the waiting evaluation harness to go on (`go`) or to exit (`stop`); written whole."""
    tmp = in_dir / (RELEASE_FILE + ".tmp")
    tmp.write_text(verdict, encoding="utf-8")
    os.replace(tmp, in_dir / RELEASE_FILE)
