"""A toy domain for the loop's tests, and the proof that a third domain is one package: it lives
out of the engine's tree, is run as `module:Class` (tests.third_domain.domain:ToyDomain), keeps
its image recipe (image/) and its in-container code (toy_box.py) here, and takes labels, names,
logs, result reading and failure mapping from the domain kit (engine.domains.kit). No file
under engine/, sandbox_images/, benchmarks/ or pyproject.toml names it.

Candidates define `f(x)`; fitness is how close f is to x**2 on a few points (minus the squared
error, so 0 is perfect). Two evaluation modes: in-process (fast loop tests) and in a real
container of its own runtime (resume/SIGKILL tests: the container is what must not be orphaned).
Every evaluation start and end is appended to <run_dir>/evaluations.log so tests can count them.
"""

from __future__ import annotations

import ast
import enum
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.domains import kit
from engine.sandbox.results import ResultModel
from engine.sandbox.runner import Stage
from engine.search.candidate import CandidateFailure, Evaluation, Proposal, Status
from engine.search.domain import CandidateContext, Domain, RunContext

BASELINES = [
    Proposal(name="Zero", thought="The constant zero.", code="def f(x):\n    return 0.0\n"),
    Proposal(name="Identity", thought="Return x unchanged.", code="def f(x):\n    return x\n"),
]

HERE = Path(__file__).resolve().parent
RECIPE = HERE / "image"  # the toy's runtime recipe: Dockerfile + requirements.txt
RUNTIME = "toy"
LAYER_KIND = "toy-candidate"
VALUES_MAX_BYTES = 1 << 20


class Values(ResultModel):
    """/out/values.json of the toy's container: f at each x, as the candidate returned them."""

    values: list[Any]


class Mode(str, enum.Enum):
    INPROCESS = "inprocess"
    SANDBOX = "sandbox"


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    xs: list[float] = Field(default_factory=lambda: [-2.0, -1.0, 0.0, 1.0, 3.0])
    mode: Mode = Mode.INPROCESS
    eval_delay_s: float = Field(0.0, ge=0)


class ToyDomain(Domain):
    name = "toy"
    config_model = ToyConfig
    config: ToyConfig

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.runtime: str | None = None

    def system_prompt(self) -> str:
        return 'You write Python. Reply with JSON {"thought": ..., "name": ..., "code": ...}.'

    def proposal_prompt(self, archive_text: str) -> str:
        return f"Archive:\n{archive_text}\nWrite f(x) that approximates x**2."

    def reflection_prompts(self) -> list[str]:
        return ["Reflect: is it new? Improve it.", "Reflect again: final answer."]

    def repair_prompt(self, error: str) -> str:
        return f"Your code failed: {error}\nFix it and reply with the same JSON format."

    def baselines(self) -> list[Proposal]:
        return list(BASELINES)

    def check(self, tree: ast.Module) -> None:
        functions = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "f"]
        if not functions:
            raise CandidateFailure(Status.INVALID, "no function f(x) is defined")
        arguments = functions[0].args
        if len(arguments.args) != 1 or arguments.vararg or arguments.kwonlyargs:
            raise CandidateFailure(Status.INVALID,
                                   f"f must take exactly one argument x, it takes {len(arguments.args)}")

    def prepare(self, run: RunContext) -> None:
        if self.config.mode is Mode.SANDBOX:
            self.runtime = run.images.runtime(RUNTIME, recipe=RECIPE)

    def evaluate(self, proposal: Proposal, ctx: CandidateContext) -> Evaluation:
        events = ctx.run.run_dir / "evaluations.log"
        _append(events, f"start {ctx.candidate_id}")
        ctx.stage("build")
        ctx.stage("test")
        values = (self._in_sandbox(proposal, ctx) if self.config.mode is Mode.SANDBOX
                  else self._in_process(proposal))
        ctx.stage("score")
        if len(values) != len(self.config.xs) or not all(isinstance(v, (int, float)) for v in values):
            raise CandidateFailure(Status.FAILED, "f must return a number")
        error = sum((v - x * x) ** 2 for v, x in zip(values, self.config.xs))
        if not math.isfinite(error):
            raise CandidateFailure(Status.FAILED, "f returned a non-finite value")
        _append(events, f"end {ctx.candidate_id}")
        return Evaluation(fitness=-error, fitness_text=f"squared error {error:.4g}", detail={"values": values})

    def _in_process(self, proposal: Proposal) -> list[float]:
        time.sleep(self.config.eval_delay_s)
        namespace: dict = {}
        try:
            exec(compile(proposal.code, "candidate", "exec"), namespace)  # test domain: trusted, gate-checked
            return [namespace["f"](x) for x in self.config.xs]
        except Exception as exc:  # the candidate's fault, whatever it is
            raise CandidateFailure(Status.FAILED, f"f raised {type(exc).__name__}: {exc}") from None

    def _in_sandbox(self, proposal: Proposal, ctx: CandidateContext) -> list[Any]:
        assert self.runtime is not None
        files = {"toy_box.py": (HERE / "toy_box.py").read_bytes(), "candidate.py": proposal.code.encode()}
        image = kit.candidate_image(ctx, self.runtime, files, kind=LAYER_KIND)
        out_dir = ctx.candidate_dir / "out"
        result = kit.run_stage(ctx, image, ["python3", "-m", "toy_box", str(self.config.eval_delay_s),
                                            json.dumps(self.config.xs)],
                               stage=Stage.EVALUATE, limits=ctx.run.limits, out_dir=out_dir)
        report = kit.collect(result, out_dir, "values.json", Values, max_bytes=VALUES_MAX_BYTES,
                             what="evaluation").require()
        return report.values


def _append(path: Path, line: str) -> None:
    with open(path, "a") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())
